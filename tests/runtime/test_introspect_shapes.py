"""The shapes `aiaas publish` reads from a graph (functions/runtime/introspect.py) for what the
torch exporters write, and what OIP metadata then tells clients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.errors import BadRequest
from functions.runtime.introspect import read_signature


def legacy_export(path: Path, batch: object) -> Path:
    """x [batch, 4] -> Gemm -> y declared [1, 3]: torch.onnx.export(dynamo=False) with
    dynamic_axes naming the input only (or none at all, batch = 1)."""
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["y"])],
        "legacy",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_an_output_declared_with_the_examples_batch_of_one_is_read_as_batched(
    tmp_path: Path,
) -> None:
    path = legacy_export(tmp_path / "m.onnx", "N")
    # onnxruntime answers 5 rows whatever the declaration says; OIP metadata said [1, 3].
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.run(None, {"x": np.ones((5, 4), np.float32)})[0].shape == (5, 3)
    assert [o.shape for o in read_signature(path).outputs] == [(-1, 3)]
    # A batch the export fixed at one everywhere stays as it is (run a row at a time).
    fixed = read_signature(legacy_export(tmp_path / "fixed.onnx", 1))
    assert ([i.shape for i in fixed.inputs], [o.shape for o in fixed.outputs]) == (
        [(1, 4)],
        [(1, 3)],
    )


def test_an_input_without_a_shape_is_refused_not_read_as_a_scalar(tmp_path: Path) -> None:
    """onnxruntime reports [] for an input whose graph type has no shape, as for a scalar: it
    was published as a scalar and every request of another rank was a 422."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "unranked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == []  # what a scalar reports too
    with pytest.raises(
        BadRequest, match=r"input 'x' has no shape in the graph \(its rank is unknown"
    ):
        read_signature(tmp_path / "m.onnx")
    scalar = helper.make_tensor_value_info("x", TensorProto.FLOAT, [])  # a real scalar is kept
    model.graph.input[0].CopyFrom(scalar)
    onnx.save(model, tmp_path / "s.onnx")
    assert [i.shape for i in read_signature(tmp_path / "s.onnx").inputs] == [()]


def test_an_output_no_input_reaches_keeps_the_batch_of_one_it_answers(tmp_path: Path) -> None:
    """torch.onnx.export(dynamo=False), dynamic_axes on the input only, of a module returning an
    nn.Parameter beside its Linear: the parameter is an initializer the graph outputs as it is
    (and a constant scaled by a Constant node is one too). onnxruntime answers it [1, 2] for any
    batch; OIP metadata said [-1, 2]."""
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    prior = numpy_helper.from_array(np.array([[0.25, 0.75]], np.float32), "prior")
    two = helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2)))
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W"], ["y"]),
            two,
            helper.make_node("Mul", ["prior", "two"], ["scaled"]),
        ],
        "parameter_out",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3]),
            helper.make_tensor_value_info("prior", TensorProto.FLOAT, [1, 2]),
            helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [1, 2]),
        ],
        initializer=[weight, prior],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    answered = session.run(None, {"x": np.ones((5, 4), np.float32)})
    declared = [spec.shape for spec in read_signature(tmp_path / "m.onnx").outputs]
    assert [a.shape for a in answered] == [(5, 3), (1, 2), (1, 2)]
    assert declared == [(-1, 3), (1, 2), (1, 2)]  # as answered: the batch of 5, and one row
