"""The external data names publishing reads from a model's protobuf fields without parsing its
weights: the same names onnx's own helper finds, in initializers, attribute tensors and
subgraphs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.external_data_helper import _get_all_tensors, uses_external_data

from functions.runtime import artifact_files
from functions.runtime.artifact_files import external_data_names
from functions.runtime.errors import BadRequest


def onnx_names(path: Path) -> set[str]:
    proto = onnx.load(str(path), load_external_data=False)
    return {
        entry.value
        for tensor in _get_all_tensors(proto)
        if uses_external_data(tensor)
        for entry in tensor.external_data
        if entry.key == "location"
    }


def weights(name: str, value: float) -> TensorProto:
    return numpy_helper.from_array(np.full((64, 64), value, np.float32), name)


def branchy_model(path: Path) -> Path:
    """An initializer, a Constant's tensor attribute and an If branch's initializer, each saved
    to its own external data file (onnx names each after its tensor)."""
    then_graph = helper.make_graph(
        [helper.make_node("Add", ["x", "then_w"], ["y_then"])], "then", [],
        [helper.make_tensor_value_info("y_then", TensorProto.FLOAT, [64, 64])],
        initializer=[weights("then_w", 2.0)],
    )  # fmt: skip
    else_graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y_else"])], "else", [],
        [helper.make_tensor_value_info("y_else", TensorProto.FLOAT, [64, 64])],
    )  # fmt: skip
    nodes = [
        helper.make_node("Constant", [], ["c"], value=weights("const_w", 3.0)),
        helper.make_node("Add", ["w", "c"], ["x"]),
        helper.make_node("If", ["flag"], ["y"], then_branch=then_graph, else_branch=else_graph),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])],
        initializer=[weights("w", 1.0)],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(
        model, str(path), save_as_external_data=True, all_tensors_to_one_file=False,
        size_threshold=0, convert_attribute=True,
    )  # fmt: skip
    return path


def test_field_numbers_are_onnx_own() -> None:
    number = {
        (onnx.ModelProto, "graph"): artifact_files.MODEL_GRAPH,
        (onnx.ModelProto, "functions"): artifact_files.MODEL_FUNCTIONS,
        (onnx.GraphProto, "node"): artifact_files.GRAPH_NODE,
        (onnx.GraphProto, "initializer"): artifact_files.GRAPH_INITIALIZER,
        (onnx.FunctionProto, "node"): artifact_files.FUNCTION_NODE,
        (onnx.NodeProto, "attribute"): artifact_files.NODE_ATTRIBUTE,
        (onnx.AttributeProto, "t"): artifact_files.ATTRIBUTE_T,
        (onnx.AttributeProto, "g"): artifact_files.ATTRIBUTE_G,
        (onnx.AttributeProto, "tensors"): artifact_files.ATTRIBUTE_TENSORS,
        (onnx.AttributeProto, "graphs"): artifact_files.ATTRIBUTE_GRAPHS,
        (onnx.TensorProto, "external_data"): artifact_files.TENSOR_EXTERNAL_DATA,
        (onnx.TensorProto, "data_location"): artifact_files.TENSOR_DATA_LOCATION,
    }
    for (message, field), ours in number.items():
        assert message.DESCRIPTOR.fields_by_name[field].number == ours, (message, field)
    assert TensorProto.EXTERNAL == artifact_files.EXTERNAL


def test_names_in_initializers_attributes_and_subgraphs_match_onnx(tmp_path: Path) -> None:
    path = branchy_model(tmp_path / "model.onnx")
    names = external_data_names(path)
    assert set(names) == onnx_names(path) == {"w", "const_w", "then_w"}
    assert len(names) == len(set(names))


def test_a_single_file_model_names_none(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    model = onnx.load(str(branchy_model(tmp_path / "external.onnx")))  # weights loaded back in
    onnx.save_model(model, str(path))
    assert external_data_names(path) == [] and onnx_names(path) == set()


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x3a\xff\xff\xff\x0f")  # a graph field claiming 4 GB
    with pytest.raises(BadRequest, match="is not an ONNX model"):
        external_data_names(path)


def test_zeros_are_refused_at_once_not_walked_as_fields(tmp_path: Path) -> None:
    """A zero byte reads as field 0, which protobuf forbids: 64 MB of them took ~14 s to walk."""
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x08\x07" + bytes(64 * 1024 * 1024))
    began = time.perf_counter()
    with pytest.raises(BadRequest, match="field number 0 at byte 2"):
        external_data_names(path)
    assert time.perf_counter() - began < 1
