"""A NaN (or JSONL null) inside a sensor window of a batch file was reported by its place in
the flattened window (`input 'x' value 62 is a missing value`): the reader had to divide by 12
to learn it was step 5 of sensor 2, where the predict API says `at index [0, 5, 2]`. Batch now
names the place in the row (`at index [5, 2]`). Real ONNX model, the CLI, the local store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_explain_wide_windows import SENSORS, _linear, _publish

STEPS = 20


def _errors(store: LocalStore, name: str) -> list[dict]:
    path = Path(store.root) / "batch/pump/output" / f"{name}.errors.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_gap_in_a_window_is_named_by_its_step_and_sensor(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", STEPS), "pump", "--window-features", "last")
    windows = np.random.default_rng(2).normal(size=(4, STEPS, SENSORS))  # float64, as numpy makes
    windows[1, 5, 2] = np.nan
    windows[3, 0, 11] = np.inf
    np.save(tmp_path / "w.npy", windows)
    assert main(["--store", store.uri, "batch", "pump", str(tmp_path / "w.npy")]) == 0
    errors = _errors(store, "w.npy")
    assert [(e["row"], e["error"].split(" is ")[0]) for e in errors] == [
        (1, "input 'x' at index [5, 2]"),
        (3, "input 'x' at index [0, 11]"),
    ], errors
    lines = []
    for i, window in enumerate(windows[:2].tolist()):
        if i == 1:
            window[5][2] = None  # pandas' to_json writes a gap so
        lines.append(json.dumps({"id": i, "x": window}))
    (tmp_path / "w.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "batch", "pump", str(tmp_path / "w.jsonl")]) == 0
    (error,) = _errors(store, "w.jsonl")
    assert error["line"] == 2
    assert error["error"].startswith("input 'x' at index [5, 2] is a missing value (null)"), error


def test_a_csv_for_a_window_of_any_length_is_told_to_send_windows(tmp_path: Path) -> None:
    """It was told to send "an .npy file (one image size a file)"; what it is told scores."""
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t", first=True), "pump")  # [N, 12, any]
    header = ",".join(f"x_{i}" for i in range(SENSORS * 3))
    (tmp_path / "w.csv").write_text(header + "\n" + ",".join(["1.0"] * SENSORS * 3) + "\n")
    assert main(["--store", store.uri, "batch", "pump", str(tmp_path / "w.csv")]) == 1
    summary = Path(store.root) / "batch/pump/output/w.csv.summary.json"
    assert json.loads(summary.read_text())["error"] == (
        "input 'x' has shape [-1, 12, -1]: CSV columns give rows of one fixed shape, and "
        "dimension 2 (the window's steps) is dynamic; send an .npy file of [N, 12, steps] "
        "windows (one length a file) or JSONL (each line its own window, of any length)"
    )
    windows = np.random.default_rng(5).normal(size=(3, SENSORS, 9)).astype(np.float32)
    np.save(tmp_path / "w.npy", windows)
    assert main(["--store", store.uri, "batch", "pump", str(tmp_path / "w.npy")]) == 0
    scored = np.load(Path(store.root) / "batch/pump/output/w.npz")["y"]
    np.testing.assert_allclose(scored[:, 0], 2 * windows[:, 1, :].sum(axis=1), rtol=1e-5)


def test_baseline_and_explain_of_a_csv_for_a_window_of_any_length_say_windows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They said the model 'takes images of any size' and to give an .npy of [N, C, H, W]
    images; what they are told is read."""
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t", first=True), "pump")  # [N, 12, any]
    header = ",".join(f"x_{i}" for i in range(SENSORS * 3))
    (tmp_path / "w.csv").write_text(header + "\n" + ",".join(["1.0"] * SENSORS * 3) + "\n")
    said = (
        f"{tmp_path / 'w.csv'}: pump:1 takes windows of any length; give an .npy file of "
        "[N, 12, steps] windows (one length a file) or a .jsonl file, one window a line"
    )
    for command in (["baseline", "pump", str(tmp_path / "w.csv")],
                    ["explain", "pump", "--file", str(tmp_path / "w.csv")]):  # fmt: skip
        capsys.readouterr()
        assert main(["--store", store.uri, *command]) == 1
        err = capsys.readouterr().err
        assert said in err and "image" not in err, err
    windows = np.random.default_rng(5).normal(size=(40, SENSORS, 9)).astype(np.float32)
    np.save(tmp_path / "w.npy", windows)
    assert main(["--store", store.uri, "baseline", "pump", str(tmp_path / "w.npy")]) == 0
