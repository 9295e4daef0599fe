"""`aiaas publish` of models keeping weights where publish did not look for them: an If
model's branch weights in external data (refused: publish hard-links the data files it works
on, and onnxruntime's load of a subgraph's weights refuses a hard link as a "potential hardlink
attack"), a Constant node's tensor in external data (a traceback: its class-list search read
the tensor from the working directory) and a big Constant node (read whole into a Python list:
64 MB of weights took publish to 0.96 GB)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime import graph_classes
from infra.cli.main import main
from tests.runtime.test_subgraph_weights_memory import DATA, MODEL, answer, branchy


def constant_model(path: Path, values: int = 64) -> Path:
    """y = x @ C, C a Constant node's (8 x values/8) tensor, kept in external data `DATA`."""
    rng = np.random.default_rng(3)
    c = numpy_helper.from_array(rng.normal(size=(8, values // 8)).astype(np.float32), "Cv")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["C"], value=c),
         helper.make_node("MatMul", ["tokens", "C"], ["y"])],
        "constant",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", values // 8])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, location=DATA,
                    size_threshold=0, convert_attribute=True)  # fmt: skip
    return path


@pytest.mark.parametrize("build", [branchy, constant_model], ids=["if-branches", "constant"])
def test_published_as_is_and_served_as_onnxruntime_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], build: object
) -> None:
    path = build(tmp_path / "export" / "model.onnx")  # type: ignore[operator]
    store = str(tmp_path / "store")
    assert main(["--store", store, "publish", str(path), "--name", MODEL]) == 0, capsys.readouterr()
    assert capsys.readouterr().out.startswith(f"published {MODEL}:1")
    x = np.ones((1, 8), np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"tokens": x}
    )[0]
    served = answer(tmp_path, "disk", x)
    assert served["statusCode"] == 200, served["body"]
    np.testing.assert_allclose(json.loads(served["body"])["outputs"]["y"], want, rtol=1e-6)


def test_a_constant_node_of_weights_is_not_read_as_a_class_list(tmp_path: Path) -> None:
    path = constant_model(tmp_path / "model.onnx", values=8 * (graph_classes.MAX_CLASSES // 8 + 1))
    graph = onnx.load_model(str(path), load_external_data=True).graph
    small = constant_model(tmp_path / "small" / "model.onnx")
    small_graph = onnx.load_model(str(small), load_external_data=True).graph
    assert "C" not in graph_classes._constants(graph)  # over MAX_CLASSES values: weights
    assert "C" in graph_classes._constants(small_graph)  # in the model: a list may be classes
