"""`aiaas compare` of regressors of several values a row: a forecast's horizons.

A demand-planning team's model answers one value per horizon (`variable` [N, 4] here, as a
skl2onnx LinearRegression fitted on 4 targets does). Their holdout CSV holds the truth as
`y_0` ... `y_3`, the columns the model was fitted on. compare said `metrics: none`, drew no
picture (`--png`: exit 1, `nothing to draw`, no report) and a `--max-drop r2=...` gate failed
for want of a metric, whatever the candidate did. It now reads the truth from those columns
(or a JSONL list), reports MAE and RMSE over every value, R² the mean of each value's (as
scikit-learn's `r2_score`), each value's own, and draws B against A. Real ONNX models
published to a directory store, compared by the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from infra.cli.main import main

LEVELS = np.array([0.0, 1000.0, 2000.0, 3000.0], np.float32)  # each horizon's own level
W = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 0.25, 2.0], [0.0, 1.0, -2.0, 0.5]], np.float32)


def forecaster(path: Path, scale: float) -> Path:
    """x @ (W * scale) + LEVELS: four horizons a row."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "levels"], ["variable"]),
        ],
        "forecast",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(W * scale, "w"), numpy_helper.from_array(LEVELS, "levels")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture
def published(tmp_path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """Versions 1 (the truth's own weights) and 2 (weights 1.5x) of `demand`; the rows and
    their truth (version 1's answers plus noise)."""
    store = str(tmp_path / "store")
    for version, scale in ((1, 1.0), (2, 1.5)):
        path = forecaster(tmp_path / f"v{version}.onnx", scale)
        argv = ["--store", store, "publish", str(path), "--name", "demand", "--task"]
        assert main([*argv, "regression", "--features", "f0,f1,f2"]) == 0
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(120, 3)).astype(np.float32) * 10
    truth = rows @ W + LEVELS + rng.normal(size=(120, 4)).astype(np.float32)
    return store, rows, truth


def expected(rows: np.ndarray, truth: np.ndarray, scale: float) -> dict[str, float]:
    """scikit-learn's figures for several outputs: MAE, RMSE over all; R² uniform_average."""
    answer = (rows @ (W * scale) + LEVELS).astype(np.float64)
    error = answer - truth
    each = 1 - (error**2).sum(0) / ((truth - truth.mean(0)) ** 2).sum(0)
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": float(each.mean()),
    }


def report_of(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_a_csv_of_each_horizons_truth_is_scored_and_drawn(
    published: tuple[str, np.ndarray, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, rows, truth = published
    data = tmp_path / "holdout.csv"
    head = "date,store_id,f0,f1,f2,y_0,y_1,y_2,y_3\n"
    body = "".join(
        f"2024-01-{i % 28 + 1:02d},s{i % 5},{','.join(map(str, r))},{','.join(map(str, t))}\n"
        for i, (r, t) in enumerate(zip(rows.tolist(), truth.tolist(), strict=True))
    )
    data.write_text(head + body)
    png = tmp_path / "cmp.png"
    capsys.readouterr()
    argv = ["--store", store, "compare", "demand", "1", "2", "--data", str(data), "--no-progress"]
    assert main([*argv, "--json", "--png", str(png)]) == 0  # `y`, publish's default, by default
    report = report_of(capsys)
    found = report["metrics"]
    assert found["label"] == "y" and found["rows"] == len(rows)
    truth64 = truth.astype(np.float64)
    for version, scale in (("a", 1.0), ("b", 1.5)):
        for key, value in expected(rows, truth64, scale).items():
            assert found[version][key] == pytest.approx(value, rel=1e-4)
    # One R² over every value would be ~1 for both: the horizons' levels (0 ... 3000) are
    # most of the truth's spread. Each horizon's own R² shows B's worse fit.
    assert found["b"]["r2"] < 0.9 < found["a"]["r2"]
    assert [each["value"] for each in found["values"]] == [0, 1, 2, 3]
    assert found["values"][3]["a"]["mae"] < found["values"][3]["b"]["mae"]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")

    assert main([*argv, "--max-drop", "r2=0.01"]) == 1  # the gate judges the horizons
    assert "quality gate failed: r2 dropped by" in capsys.readouterr().err
    assert main([*argv, "--label", "y"]) == 0
    text = capsys.readouterr().out
    assert "4 values a row; R² the mean of each value's" in text
    assert "    value 3: mae A " in text


def test_a_jsonl_list_is_the_truth_and_one_value_a_row_is_told(
    published: tuple[str, np.ndarray, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, rows, truth = published
    data = tmp_path / "holdout.jsonl"
    lines = [
        json.dumps({"id": i, "f0": r[0], "f1": r[1], "f2": r[2], "y": t, "y_first": t[0]})
        for i, (r, t) in enumerate(zip(rows.tolist(), truth.tolist(), strict=True))
    ]
    data.write_text("\n".join(lines) + "\n")
    argv = ["--store", store, "compare", "demand", "1", "2", "--data", str(data), "--no-progress"]
    capsys.readouterr()
    assert main([*argv, "--json", "--label", "y"]) == 0
    found = report_of(capsys)["metrics"]
    for key, value in expected(rows, truth.astype(np.float64), 1.5).items():
        assert found["b"][key] == pytest.approx(value, rel=1e-4)

    assert main([*argv, "--json", "--label", "y_first"]) == 0
    report = report_of(capsys)
    assert report["metrics"] is None
    assert "holds no 4 numbers a row" in report["metrics_unavailable"]
    assert "give --label T" in report["metrics_unavailable"]


def test_a_wide_output_is_not_held_as_a_regressions_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 40 values a row (an embedding published as `other`): every row's values would be kept
    # for metrics (100,000 rows of 768: 1.2 GB), so past 32 it is compared on its outputs only.
    store = str(tmp_path / "store")
    weights = np.random.default_rng(1).normal(size=(3, 40)).astype(np.float32)
    for version in (1, 2):
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["emb"])],
            "wide",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
            [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["n", 40])],
            [numpy_helper.from_array(weights * version, "w")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, tmp_path / f"w{version}.onnx")
        argv = ["--store", store, "publish", str(tmp_path / f"w{version}.onnx"), "--name", "w"]
        assert main([*argv, "--features", "f0,f1,f2"]) == 0
    data = tmp_path / "rows.csv"
    data.write_text("f0,f1,f2\n1,2,3\n4,5,6\n")
    capsys.readouterr()
    argv = ["--store", store, "compare", "w", "1", "2", "--data", str(data), "--no-progress"]
    assert main([*argv, "--json"]) == 0
    report = report_of(capsys)
    assert report["outputs_compared"] == ["emb"] and report["max_abs_diff"] > 0
    assert report["metrics"] is None and report["points"] is None
