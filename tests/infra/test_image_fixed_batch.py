"""A CNN exported with a fixed batch of one (what `torch.onnx.export` gives without
`dynamic_axes` / `dynamic_shapes`: input [1, 3, H, W], output [1, classes]), published with
`aiaas publish` and used as an image user does: one image with or without its batch axis and
several at once (predict handler, API Gateway v2 events), an NPY file of images (`aiaas batch`),
a background from that NPY (`aiaas baseline`) and patch explanations. Answers are checked
against onnxruntime run directly, one image at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

SIDE = 8
LABELS = "cat,dog,bird"


def fixed_batch_cnn(path: Path, batch: int | str = 1) -> Path:
    """Conv 3->4 (3x3), ReLU, global average pool, Gemm to 3 logits; the batch axis fixed at
    `batch` (a name: dynamic)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=4).astype(np.float32), "B"),
        numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "G"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Gemm", ["f", "G"], ["logits"]),
        ],
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, SIDE, SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def reference(path: Path, images: np.ndarray) -> np.ndarray:
    """Logits from onnxruntime directly, one image per run (all the graph takes)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"x": image[None]})[0] for image in images])


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixed-batch")
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "cnn.onnx")
    assert (
        main(["--store", store.uri, "publish", str(path), "--name", "cnn", "--labels", LABELS]) == 0
    )
    np.save(root / "images.npy", np.random.default_rng(1).random((12, 3, SIDE, SIDE), np.float32))
    return root


def post(root: Path, path: str, doc: Any) -> tuple[int, Any]:
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service: PredictService = service_from_env({"AIAAS_MODEL": "cnn"}, pool)
    response = service.handle(http_event("POST", path, json.dumps(doc)))
    return response["statusCode"], body_of(response)


def test_one_image_without_its_batch_axis_is_predicted(root: Path) -> None:
    image = np.load(root / "images.npy")[0]
    status, doc = post(root, "/models/cnn/predict", {"inputs": image.tolist()})
    assert status == 200, doc
    want = reference(root / "cnn.onnx", image[None])
    np.testing.assert_allclose(doc["outputs"]["logits"], want, rtol=1e-6)
    assert doc["predictions"][0]["label"] == LABELS.split(",")[int(want.argmax())]


def test_several_images_are_predicted_one_run_each(root: Path) -> None:
    images = np.load(root / "images.npy")[:3]
    status, doc = post(root, "/models/cnn/predict", {"inputs": images.tolist()})
    assert status == 200, doc
    np.testing.assert_allclose(
        doc["outputs"]["logits"], reference(root / "cnn.onnx", images), rtol=1e-6
    )
    assert len(doc["predictions"]) == 3


def test_an_npy_file_of_images_is_batch_scored(root: Path) -> None:
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "batch", "cnn", str(root / "images.npy")]) == 0
    scored = np.load(root / "store" / "batch" / "cnn" / "output" / "images.npz")
    images = np.load(root / "images.npy")
    np.testing.assert_allclose(scored["logits"], reference(root / "cnn.onnx", images), rtol=1e-6)
    assert len(scored["label"]) == len(images)


def test_a_background_from_the_npy_then_patch_explanations(root: Path) -> None:
    store = LocalStore(root / "store")
    assert main(["--store", store.uri, "baseline", "cnn", str(root / "images.npy")]) == 0
    image = np.load(root / "images.npy")[0]
    body = {"inputs": [image.tolist()], "parameters": {"samples": 200, "patch": 4}}
    status, doc = post(root, "/models/cnn/explain", body)
    assert status == 200, doc
    assert doc["features"] == [f"patch_r{r}_c{c}" for r in (0, 4) for c in (0, 4)]
    (one,) = doc["explanations"]
    logits = reference(root / "cnn.onnx", image[None])[0]
    np.testing.assert_allclose(one["prediction"], np.exp(logits) / np.exp(logits).sum(), rtol=1e-5)
    additive = np.asarray(one["attributions"]).sum(axis=0)
    np.testing.assert_allclose(
        additive, np.subtract(one["prediction"], one["base_value"]), atol=1e-5
    )


def test_a_fixed_batch_over_one_is_still_refused_for_batch_scoring(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = fixed_batch_cnn(tmp_path / "two.onnx", batch=2)
    assert main(["--store", store.uri, "publish", str(path), "--name", "two"]) == 0
    np.save(tmp_path / "images.npy", np.zeros((4, 3, SIDE, SIDE), np.float32))
    assert main(["--store", store.uri, "batch", "two", str(tmp_path / "images.npy")]) == 1
    summary = json.loads(
        (tmp_path / "store" / "batch" / "two" / "output" / "images.npy.summary.json").read_text()
    )
    assert "dynamic first (batch) dimension" in summary["error"]


def test_a_csv_for_a_model_of_any_image_size_is_told_to_send_npy_or_jsonl(tmp_path: Path) -> None:
    # A dynamic height and width (torch's dynamic_shapes on H and W): CSV columns cannot say
    # an image's size, NPY and JSONL can (tests/infra/test_image_any_size_batch.py).
    store = LocalStore(tmp_path / "store")
    model = onnx.load(fixed_batch_cnn(tmp_path / "any.onnx", batch="N"))
    for axis, name in ((2, "h"), (3, "w")):
        model.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    onnx.save(model, tmp_path / "any.onnx")
    assert main(["--store", store.uri, "publish", str(tmp_path / "any.onnx"), "--name", "any"]) == 0
    (tmp_path / "images.csv").write_text("x_0,x_1\n1,2\n")
    assert main(["--store", store.uri, "batch", "any", str(tmp_path / "images.csv")]) == 1
    summary = json.loads(
        (tmp_path / "store" / "batch" / "any" / "output" / "images.csv.summary.json").read_text()
    )
    assert summary["error"] == (
        "input 'x' has shape [-1, 3, -1, -1]: CSV columns give rows of one fixed shape, and "
        "dimensions 2, 3 are dynamic; send an .npy file (one image size a file) or JSONL (each "
        "line its own size)"
    )
