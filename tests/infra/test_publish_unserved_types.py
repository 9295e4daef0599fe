"""What `aiaas publish` cannot serve is named with what it can: an output that is no tensor
(a sequence), and a tensor of an element type onnxruntime's Python API and the Open Inference
Protocol cannot carry (BF16 was told 'inputs must be tensors', though it is one: OIP hunt)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from functions.runtime.store import LocalStore
from tests.infra.test_publish_classifiers import refused, store

__all__ = ["store"]  # the fixture, shared


def test_an_output_aiaas_cannot_serve_is_named_with_a_hint(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["parts"])],
        "sequence",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "sequence.onnx"
    onnx.save(model, path)
    assert refused(capsys, store, path) == (
        f"output 'parts' has type seq(tensor(float)), which aiaas cannot serve: it serves "
        f"tensors of {SERVED} or a ZipMap's class -> probability maps (seq(map(...))); "
        "skl2onnx exports a MultiOutputClassifier's probabilities so, one tensor a target: "
        "export each target's estimator (model.estimators_[i]) as its own model and publish "
        "each, or keep only the tensor outputs (onnx.utils.extract_model(..., output_names=[...]) "
        "without 'parts')"
    )


SERVED = "BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, FP32, FP64, BYTES"


@pytest.mark.parametrize("kind", ["input", "output"])
def test_a_bfloat16_tensor_is_refused_for_its_type_not_as_no_tensor(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path, kind: str
) -> None:
    """Was 'inputs must be tensors' for a BF16 tensor, which is one."""
    nodes = [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)]
    x, y = TensorProto.FLOAT, TensorProto.BFLOAT16
    if kind == "input":
        nodes = [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT)]
        x, y = TensorProto.BFLOAT16, TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "bf16",
        [helper.make_tensor_value_info("x", x, ["N", 3])],
        [helper.make_tensor_value_info("y", y, ["N", 3])],
    )
    path = tmp_path / "bf16.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    name = "x" if kind == "input" else "y"
    assert refused(capsys, store, path) == (
        f"{kind} '{name}' has type tensor(bfloat16), which aiaas cannot serve: its element "
        f"types are {SERVED}; export the model with one of them (a Cast at its edges)"
    )
