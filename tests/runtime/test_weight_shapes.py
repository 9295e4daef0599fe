"""The int8 quantizer's input: a torch export's value_info for its weights is dropped (onnxruntime
< 1.32 transposes a Gemm's weight in place and then fails on the stale shape); the rest stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.weight_shapes import without_weight_shapes


def test_only_the_weights_shapes_are_dropped(tmp_path: Path) -> None:
    w = numpy_helper.from_array(np.ones((2, 3), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
         helper.make_node("Relu", ["h"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[w],
        value_info=[helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 3]),
                    helper.make_tensor_value_info("h", TensorProto.FLOAT, ["N", 2])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    stripped = without_weight_shapes(tmp_path / "m.onnx")
    assert [v.name for v in stripped.graph.value_info] == ["h"]
    session = ort.InferenceSession(stripped.SerializeToString())
    np.testing.assert_array_equal(
        session.run(None, {"x": np.ones((1, 3), np.float32)})[0], [[3, 3]]
    )
