"""`publish --data` of held-out windows of several lengths (a JSONL, a window a line, for a GRU
over [N, -1, 12]) was refused as ragged and told to pad the shorter windows, which moves a
GRU's answers, where `aiaas batch` and `compare` score the same file. It is now scored one run
of the model a length. Real ONNX model (y = 2 x the sum over steps of sensor 1), the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, main
from tests.infra.test_explain_wide_windows import SENSORS, _linear


def _file(path: Path, lengths: list[int], first: bool = False) -> list[float]:
    """Windows of `lengths` steps, labelled with a value near the model's; the model's own."""
    rng = np.random.default_rng(6)
    answers, lines = [], []
    for steps in lengths:
        window = rng.normal(size=(steps, SENSORS))
        answers.append(2 * float(window[:, 1].sum()))
        sent = window.T if first else window
        lines.append(json.dumps({"x": sent.tolist(), "y": round(answers[-1] + 0.5, 3)}))
    path.write_text("\n".join(lines) + "\n")
    return answers


@pytest.mark.parametrize("first", [False, True])
def test_windows_of_several_lengths_are_scored_each_on_its_own(tmp_path: Path, first: bool) -> None:
    store = LocalStore(tmp_path / "store")
    model = _linear(tmp_path / "m.onnx", "t", first=first)
    answers = _file(tmp_path / "held.jsonl", [5, 9, 5, 14, 30, 9, 7, 5], first)
    argv = ["--store", store.uri, "publish", str(model), "--name", "pump", "--task", "regression"]
    assert main([*argv, "--data", str(tmp_path / "held.jsonl"), "--target", "y"]) == 0
    held = Registry(store).manifest("pump", "1").metrics["held_out"]
    truth = np.round(np.array(answers) + 0.5, 3)
    assert held["mae"] == pytest.approx(np.abs(truth - np.array(answers)).mean(), abs=1e-4)
    assert held["data"] == "held.jsonl" and "rows_not_finite" not in held


def test_a_bad_window_among_them_is_named_by_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    model = _linear(tmp_path / "m.onnx", "t")
    _file(tmp_path / "held.jsonl", [5, 9, 5])
    lines = (tmp_path / "held.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"x": [[1.0] * 11] * 4, "y": 1.0})  # 11 sensors, not 12
    (tmp_path / "held.jsonl").write_text("\n".join(lines) + "\n")
    argv = ["--store", store.uri, "publish", str(model), "--name", "pump", "--task", "regression"]
    assert main([*argv, "--data", str(tmp_path / "held.jsonl"), "--target", "y"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "line 3" in err and "12" in err, err
    assert not Registry(store).models()


@pytest.mark.parametrize(
    ("lengths", "bad", "said"),
    [
        ([5, 9], None, "line 3: input 'x' at index [1, 11] is a missing value"),
        ([5, 9], "a", "line 3: input 'x' value [1, 11] must be a number"),
        ([2, 2], None, "line 3: input 'x' at index [1, 11] is a missing value"),  # one length
    ],
)
def test_a_bad_value_in_a_window_is_named_by_its_line_and_place(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    lengths: list[int],
    bad: str | None,
    said: str,
) -> None:
    """A null at step 1 of sensor 11 of the third window was said `at index [0, 1, 11]`
    (windows of several lengths, each decoded alone: the first window's place) or `[2, 1,
    11]` (one length), and a string `value [0, 1, 11]` (its length's run): no line."""
    store = LocalStore(tmp_path / "store")
    model = _linear(tmp_path / "m.onnx", "t")
    _file(tmp_path / "held.jsonl", lengths)
    window: list[list[object]] = [[1.0] * SENSORS, [1.0] * (SENSORS - 1) + [bad]]
    with (tmp_path / "held.jsonl").open("a") as lines:
        lines.write(json.dumps({"x": window, "y": 1.0}) + "\n")
    argv = ["--store", store.uri, "publish", str(model), "--name", "pump", "--task", "regression"]
    assert main([*argv, "--data", str(tmp_path / "held.jsonl"), "--target", "y"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert said in err, err
    assert not Registry(store).models()
