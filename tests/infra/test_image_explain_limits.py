"""Explanations of image models whose answers are not a few class scores: a segmentation map
(one output value per pixel and class) and a uint8 image model of any size, published with
`aiaas publish` and explained through the predict function's /explain route.

A 128x128 map took 10.7 s and 5.3 GB of memory before its answer was refused as too big (413),
under the 10 s limit's estimate, which counted one output; a uint8 image's left-out patches
took its mean colour cut down (254.9 -> 254) instead of rounded."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.any_size_images import publish, softmax
from tests.infra.test_image_any_size_explain import explain


def uint8_any_size(path: Path) -> Path:
    """logits = mean colour of a uint8 NHWC image of any size @ W: [N, H, W, 3] -> [N, 3]."""
    weights = np.diag([0.1, 0.2, -0.1]).astype(np.float32)  # a level moves each class apart
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["f"], ["m"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["m", "w"], ["logits"]),
        ],
        "uint8_any_size",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["n", "h", "w", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PredictService]:
    root = tmp_path_factory.mktemp("explain-limits")
    store: LocalStore = publish(root)
    path = uint8_any_size(root / "u8.onnx")
    assert (
        main(["--store", store.uri, "publish", str(path), "--name", "u8", "--labels", "a,b,c"]) == 0
    )
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return {m: service_from_env({"AIAAS_MODEL": m}, pool) for m in ("segment", "u8")}


def test_a_segmentation_map_too_big_to_explain_is_refused_before_it_is_computed(
    services: dict[str, PredictService],
) -> None:
    small = np.random.default_rng(0).random((3, 8, 8), np.float32)
    status, doc = explain(services["segment"], "segment", {"inputs": [small.tolist()]})
    assert status == 200, doc  # 3 x 8 x 8 output values: an answer that fits
    began = time.monotonic()
    big = np.random.default_rng(1).random((3, 128, 128), np.float32)
    status, doc = explain(services["segment"], "segment", {"inputs": [big.tolist()]})
    assert time.monotonic() - began < 5
    assert status == 422
    assert doc["error"].startswith("this explanation would hold ")
    assert "x 49,152 output values)" in doc["error"]  # 3 classes x 128 x 128


def test_a_uint8_images_left_out_patches_take_its_mean_colour_rounded(
    services: dict[str, PredictService], tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, size=(12, 10, 3)).astype(np.uint8)
    image[..., 1] = np.where(rng.random((12, 10)) < 0.9, 255, 254)  # mean ~254.9
    status, doc = explain(services["u8"], "u8", {"inputs": [image.tolist()]})
    assert status == 200, doc
    mean = np.rint(image.reshape(-1, 3).mean(0)).astype(np.uint8)
    flat = np.broadcast_to(mean, image.shape)[None].copy()
    path = tmp_path / "u8.onnx"
    session = ort.InferenceSession(str(uint8_any_size(path)), providers=["CPUExecutionProvider"])
    expected = softmax(np.asarray(session.run(None, {"x": flat})[0][0]))
    np.testing.assert_allclose(doc["explanations"][0]["base_value"], expected, rtol=1e-6)
