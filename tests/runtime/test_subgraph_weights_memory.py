"""A model whose If branches keep their weights in external data is never loaded from memory:
onnxruntime takes the main graph's external weights from the buffers it is given, but reads a
subgraph's from a file in the working directory. A file planted there was answered as the
weights (16.0 everywhere, with a 200); without one the load failed as a bare 503. From memory
it is now refused, saying how to serve it; from the cache directory it answers as onnxruntime
does on the user's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.artifact_files import nested_external_data
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import ModelUnavailable
from functions.runtime.model import LoadedModel
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler
from tests import onnx_factory
from tests.runtime.test_external_data import predict_event

MODEL = "big-text"  # the name predict_event routes to
DATA = "model.onnx.data"


def branchy(path: Path) -> Path:
    """y = x @ Wt when sum(x) > 0, else x @ We (x named `tokens`); the branches' weights in `DATA`."""
    rng = np.random.default_rng(5)
    weight = {n: numpy_helper.from_array(rng.normal(size=(8, 8)).astype(np.float32), n)
              for n in ("Wt", "We")}  # fmt: skip
    out = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("yt", "ye")}
    then_g = helper.make_graph([helper.make_node("MatMul", ["tokens", "Wt"], ["yt"])], "then", [],
                               [out["yt"]], [weight["Wt"]])  # fmt: skip
    else_g = helper.make_graph([helper.make_node("MatMul", ["tokens", "We"], ["ye"])], "else", [],
                               [out["ye"]], [weight["We"]])  # fmt: skip
    nodes = [
        helper.make_node("ReduceSum", ["tokens"], ["s"], keepdims=0),
        helper.make_node("Greater", ["s", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    graph = helper.make_graph(
        nodes, "branchy",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        [numpy_helper.from_array(np.array(0, np.float32), "zero")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(
        model, str(path), save_as_external_data=True, location=DATA, size_threshold=0
    )  # fmt: skip
    return path


def answer(tmp_path: Path, load: str, x: np.ndarray) -> dict[str, Any]:
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": ":1",
        "AIAAS_STORE": str(tmp_path / "store"),
        "AIAAS_CACHE_DIR": str(tmp_path / f"cache-{load}"),
        "AIAAS_MODEL_LOAD": load,
    }
    handler = load_handler("functions.predict.handler.handler", env)
    response: dict[str, Any] = handler(predict_event(x), None)
    return response


def test_a_subgraph_s_external_weights_are_never_read_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = branchy(tmp_path / "export" / "model.onnx")
    assert nested_external_data(path.read_bytes()) == [DATA]
    Registry(LocalStore(tmp_path / "store")).publish(
        onnx_factory.manifest_for(path, MODEL, "1"), path
    )
    x = np.ones((1, 8), np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"tokens": x}
    )[0]
    planted = tmp_path / "cwd"
    planted.mkdir()
    np.full(64 * 2, 0.5, np.float32).tofile(planted / DATA)  # a file of that name, where it runs
    monkeypatch.chdir(planted)

    refused = answer(tmp_path, "memory", x)
    assert refused["statusCode"] == 503
    assert json.loads(refused["body"]) == {
        "error": "model big-text:1 cannot be loaded from memory here"
    }
    served = answer(tmp_path, "disk", x)
    assert served["statusCode"] == 200, served["body"]
    np.testing.assert_allclose(json.loads(served["body"])["outputs"]["y"], want, rtol=1e-6)


def test_the_main_graph_s_external_weights_still_load_from_memory(tmp_path: Path) -> None:
    """Its initializers (and Constant nodes) onnxruntime takes from the buffers: not refused."""
    path = onnx_factory.external_matmul(tmp_path / "m" / "model.onnx", DATA, 4)
    assert nested_external_data(path.read_bytes()) == []


def test_the_refusal_names_the_room_the_version_takes(tmp_path: Path) -> None:
    """It counted the model file twice (its weight_bytes include it)."""
    path = branchy(tmp_path / "export" / "model.onnx")
    registry = Registry(LocalStore(tmp_path / "store"))
    registry.publish(onnx_factory.manifest_for(path, MODEL, "1"), path)
    manifest = registry.manifest(MODEL, "1")
    held = ArtifactCache(registry.store, tmp_path / "cache").fetch_into_memory(manifest)
    with pytest.raises(ModelUnavailable) as refused:
        LoadedModel(manifest, held)
    assert refused.value.message.endswith(
        f"AIAAS_CACHE_DIR with room for its {manifest.weight_bytes} bytes)"
    )
