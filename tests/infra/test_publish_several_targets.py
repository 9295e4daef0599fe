"""`aiaas publish --data` of a regressor of several values a row: a forecast's horizons.

The demand-planning team's holdout CSV holds each horizon's truth as `y_0` ... `y_3` (the
columns the model was fitted on, named as batch names an input's). publish was refused: "no
label column" for the CSV, and "a regressor of several targets cannot be scored yet" for a
JSONL list or an NPZ `y` [N, 4], so the card had no metrics and `aiaas compare` no default
target. It now scores them as `aiaas compare` does (tests/infra/test_compare_several_values.py):
MAE and RMSE over every value, R² the mean of each value's. Real ONNX models, a directory store.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from infra.cli.main import main
from tests.infra.test_compare_several_values import LEVELS, W, expected, forecaster


def _holdout(tmp_path: Path, gap: bool = False) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(80, 3)).astype(np.float32) * 10
    truth = rows @ W + LEVELS + rng.normal(size=(80, 4)).astype(np.float32)
    cells = [
        [*map(str, r), *map(str, t)] for r, t in zip(rows.tolist(), truth.tolist(), strict=True)
    ]
    if gap:
        cells[5][4] = ""  # y_1 of the row on line 7
    data = tmp_path / "holdout.csv"
    lines = ["f0,f1,f2,y_0,y_1,y_2,y_3", *(",".join(c) for c in cells)]
    data.write_text("\n".join(lines) + "\n")
    return data, rows, truth.astype(np.float64)


def test_each_horizons_truth_in_a_csv_is_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    data, rows, truth = _holdout(tmp_path)
    path = forecaster(tmp_path / "v1.onnx", 1.5)
    argv = ["--store", store, "publish", str(path), "--name", "demand", "--task", "regression"]
    assert main([*argv, "--features", "f0,f1,f2", "--data", str(data)]) == 0  # `y` by default
    out = capsys.readouterr().out
    assert "on 80 rows of holdout.csv" in out
    manifest = json.loads((tmp_path / "store/models/demand/versions/1/manifest.json").read_text())
    held_out = manifest["metrics"]["held_out"]
    assert held_out["target"] == "y" and held_out["rows"] == 80
    for key, value in expected(rows, truth, 1.5).items():
        assert held_out[key] == pytest.approx(value, rel=1e-4)
    assert (tmp_path / "store/models/demand/versions/1/card/residuals.png").exists()


def test_a_row_missing_a_horizons_truth_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = str(tmp_path / "store")
    data, _, _ = _holdout(tmp_path, gap=True)
    path = forecaster(tmp_path / "v1.onnx", 1.0)
    argv = ["--store", store, "publish", str(path), "--name", "demand", "--features", "f0,f1,f2"]
    assert main([*argv, "--data", str(data), "--target", "y"]) == 1
    error = capsys.readouterr().err
    assert "is not a finite number: give each row all its targets, or leave the row out" in error
