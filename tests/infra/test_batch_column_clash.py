"""Inputs named as Keras names them, `input` [N, 2] and `input_1` [N, 1]: CSV column `input_1` is
element 1 of `input` and the whole of `input_1`. Batch fed that one column to both and scored a
made-up row; baseline read it twice. No CSV can hold both values: both now say to use JSONL,
which scores the model as predict does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from infra.cli.main import main
from tests import onnx_factory
from tests.publishing import published_cli


def clashing(path: Path) -> Path:
    """y = 10 * sum(input) + 1000 * input_1."""
    nodes = [
        helper.make_node("ReduceSum", ["input", "axes"], ["total"], keepdims=1),
        helper.make_node("Mul", ["total", "ten"], ["tens"]),
        helper.make_node("Mul", ["input_1", "thousand"], ["thousands"]),
        helper.make_node("Add", ["tens", "thousands"], ["y"]),
    ]
    inputs: onnx_factory.Tensors = {
        "input": (TensorProto.FLOAT, ["N", 2]),
        "input_1": (TensorProto.FLOAT, ["N", 1]),
    }
    constants = [
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("ten", TensorProto.FLOAT, [], [10.0]),
        helper.make_tensor("thousand", TensorProto.FLOAT, [], [1000.0]),
    ]
    outputs: onnx_factory.Tensors = {"y": (TensorProto.FLOAT, ["N", 1])}
    return onnx_factory.over_rows(path, nodes, inputs, outputs, constants)


def test_one_column_two_inputs_read_is_refused_and_jsonl_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = clashing(tmp_path / "m.onnx")
    store = published_cli(tmp_path, model)
    rows = tmp_path / "rows.csv"
    rows.write_text("input_0,input_1\n1,2\n")
    capsys.readouterr()
    assert main(["--store", store.uri, "batch", "m", str(rows)]) == 1  # was 2030: 10*3 + 1000*2
    said = (
        "model m:1 reads column 'input_1' as element 1 of input 'input' and as input 'input_1', "
        "which one CSV column cannot be: score it from JSONL (one object a row, a field an input)"
    )
    assert said in capsys.readouterr().err
    assert not store.exists("batch/m/output/rows.csv")
    assert main(["--store", store.uri, "baseline", "m", str(rows)]) == 1
    assert "reads column(s) input_1 for two of its inputs" in capsys.readouterr().err
    lines = tmp_path / "rows.jsonl"
    lines.write_text(json.dumps({"input": [1, 2], "input_1": [3]}) + "\n")
    assert main(["--store", store.uri, "batch", "m", str(lines)]) == 0
    (scored,) = store.get_bytes("batch/m/output/rows.jsonl").decode().splitlines()
    assert json.loads(scored)["pred_y"] == [3030.0]
