"""A bool target (`True`/`False`, as pandas' to_csv writes a bool column; `true`/`false`) read
by `aiaas publish --data` and `aiaas compare --data`.

skl2onnx names the classes of a bool y 0 and 1 (sklearn sorts False first), so publish refused
such a file ("'y' holds 'False', which is not one of the model's classes ['0', '1']") and
compare scored it accuracy 0, "a class neither version was trained on" (hunt_ownmodels 4).
Real parts: skl2onnx LogisticRegression models, pandas' own CSV and JSONL, the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.cli_run import run

FEATURES = "a,b,c"


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    return x, x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.3, 200) > 0


def _model(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[Path, float]:
    fitted = LogisticRegression().fit(x, y)
    path.write_bytes(to_onnx(fitted, x[:1], options={"zipmap": False}).SerializeToString())
    return path, float(np.mean(fitted.predict(x) == y))


def _frame(x: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=FEATURES.split(","))
    frame["y"] = y
    return frame


def _accuracy(store: LocalStore, name: str) -> float:
    return float(Registry(store).manifest(name, "1").metrics["held_out"]["accuracy"])


@pytest.mark.parametrize("written", ["pandas", "lower", "jsonl"])
def test_a_bool_column_is_the_two_classes_skl2onnx_names_0_and_1(
    tmp_path: Path, rows: tuple[np.ndarray, np.ndarray], written: str
) -> None:
    x, y = rows
    model, expected = _model(tmp_path / "bool.onnx", x, y)
    frame = _frame(x, y)
    data = tmp_path / ("held-out.jsonl" if written == "jsonl" else "held-out.csv")
    if written == "jsonl":
        frame.to_json(data, orient="records", lines=True)  # "y":true
    else:
        frame.to_csv(data, index=False)  # y: True, False
        if written == "lower":
            data.write_text(
                data.read_text().replace(",True\n", ",true\n").replace(",False\n", ",false\n")
            )
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "bool", "--features", FEATURES)
    code, out, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    assert "classes 0, 1" in out
    assert _accuracy(store, "bool") == pytest.approx(expected) and expected > 0.85
    assert run(store, *argv)[0] == 0
    code, out, err = run(store, "compare", "bool", "1", "2", "--data", str(data), "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["rows"] == len(y) and metrics["unknown_labels"] == {}, metrics
    for side in ("a", "b"):
        assert metrics[side]["accuracy"] == pytest.approx(expected), metrics


def test_true_false_are_classes_spelled_in_another_case(
    tmp_path: Path, rows: tuple[np.ndarray, np.ndarray]
) -> None:
    # A model trained on a file written `false`/`true` (aiaas train keeps labels as written),
    # scored on pandas' `False`/`True`.
    x, y = rows
    model, expected = _model(tmp_path / "text.onnx", x, np.where(y, "true", "false"))
    data = tmp_path / "held-out.csv"
    _frame(x, y).to_csv(data, index=False)
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "text", "--features", FEATURES)
    code, out, err = run(store, *argv, "--data", str(data), "--target", "y")
    assert code == 0, err
    assert "classes false, true" in out
    assert _accuracy(store, "text") == pytest.approx(expected)


def test_true_false_against_two_named_classes_is_refused_saying_why(
    tmp_path: Path, rows: tuple[np.ndarray, np.ndarray]
) -> None:
    # `--labels bad,good` over classes 0, 1: a file's True could be either, so no guess.
    x, y = rows
    model, _ = _model(tmp_path / "named.onnx", x, y)
    data = tmp_path / "held-out.csv"
    _frame(x, y).to_csv(data, index=False)
    store = LocalStore(tmp_path / "store")
    argv = ("publish", str(model), "--name", "named", "--features", FEATURES)
    code, _, err = run(store, *argv, "--labels", "bad,good", "--data", str(data), "--target", "y")
    assert code == 1
    assert err == (
        f"aiaas publish: error: --data {data}: 'y' holds 'False', which is not one of the "
        "model's classes ['bad', 'good'] (True/False are read as classes 0, 1 or as classes so "
        "named: which of these is True cannot be told); give class names or indices 0..1\n"
    )
    assert Registry(store).versions("named", missing_ok=True) == []
