"""A greyscale image model ([N, 1, H, W] or [N, H, W, 1]) sent images as numpy and PIL hold
them, [N, H, W] or one [H, W], with no channel axis: the 422 (and a batch file's refusal) says
so and gives the numpy that adds it, where predict said "got [1, 5, 28, 28] (dimension 1 must
be 1)", a shape the caller never sent (it had read [5, 28, 28] as one image of 5 channels)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event

SIDE = 12


def grey_cnn(path: Path, last: bool) -> Path:
    """Conv 1->2 (3x3), ReLU, global average pool, Gemm to 3 logits; channels last: a
    Transpose to [N, 1, H, W] first, as a Keras-style export has."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(2, 1, 3, 3)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=(2, 3)).astype(np.float32), "G"),
    ]
    first = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if last else []
    graph = helper.make_graph(
        [
            *first,
            helper.make_node("Conv", ["t" if last else "x", "W"], ["c"]),
            helper.make_node("Relu", ["c"], ["r"]),
            helper.make_node("GlobalAveragePool", ["r"], ["p"]),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("Gemm", ["f", "G"], ["logits"]),
        ],
        "grey",
        [
            helper.make_tensor_value_info(
                "x", TensorProto.FLOAT, ["N", SIDE, SIDE, 1] if last else ["N", 1, SIDE, SIDE]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("grey-axis")
    store = LocalStore(root / "store")
    for name, last in (("chw", False), ("hwc", True)):
        path = grey_cnn(root / f"{name}.onnx", last)
        assert main(["--store", store.uri, "publish", str(path), "--name", name]) == 0
    return root


def post(root: Path, model: str, route: str, doc: Any) -> tuple[int, Any]:
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    response = service_from_env({"AIAAS_MODEL": model}, pool).handle(
        http_event("POST", route, json.dumps(doc))
    )
    return response["statusCode"], body_of(response)


IMAGES = np.random.default_rng(1).uniform(size=(5, SIDE, SIDE)).astype(np.float32)
CASES = [  # model, the channel axis added as the fix says
    ("chw", "images[:, None]", IMAGES[:, None], "image[None, None]"),
    ("hwc", "images[..., None]", IMAGES[..., None], "image[None, ..., None]"),
]


@pytest.mark.parametrize(("model", "fix", "fixed", "fix_one"), CASES)
def test_grey_images_without_their_channel_axis_are_told_to_add_it(
    root: Path, model: str, fix: str, fixed: np.ndarray, fix_one: str
) -> None:
    want = f"[-1, 1, {SIDE}, {SIDE}]" if model == "chw" else f"[-1, {SIDE}, {SIDE}, 1]"
    for body in ({"inputs": IMAGES.tolist()}, {"instances": IMAGES.tolist()}):
        assert post(root, model, f"/models/{model}/predict", body) == (
            422,
            {
                "error": f"input 'x' expects shape {want} (rank 4); got shape [5, {SIDE}, "
                f"{SIDE}]; these look like greyscale images [N, H, W] without their channel "
                f"axis of 1, which this model takes (numpy: {fix})"
            },
        )
    status, doc = post(root, model, f"/models/{model}/predict", {"inputs": IMAGES[0].tolist()})
    assert (status, doc["error"].split("; ", 2)[2]) == (
        422,
        "these look like one greyscale image [H, W] without its batch axis and its channel "
        f"axis of 1, which this model takes (numpy: {fix_one})",
    )
    tensor = {"name": "x", "shape": [5, SIDE, SIDE], "datatype": "FP32"}
    status, doc = post(
        root,
        model,
        f"/v2/models/{model}/infer",
        {"inputs": [{**tensor, "data": IMAGES.ravel().tolist()}]},
    )
    assert status == 422 and doc["error"].endswith(f"(numpy: {fix})"), doc
    # the fix it names is answered, as onnxruntime answers it
    status, doc = post(root, model, f"/models/{model}/predict", {"inputs": fixed.tolist()})
    session = ort.InferenceSession(str(root / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    assert status == 200
    np.testing.assert_allclose(
        doc["outputs"]["logits"], session.run(None, {"x": fixed})[0], rtol=1e-5
    )
    # one grey image with its channel axis, no batch axis ([1, H, W] / [H, W, 1]) is a row
    status, doc = post(root, model, f"/models/{model}/predict", {"inputs": fixed[0].tolist()})
    assert status == 200 and len(doc["outputs"]["logits"]) == 1


def test_a_batch_file_of_grey_images_without_their_channel_axis_says_so(root: Path) -> None:
    store = LocalStore(root / "store")
    np.save(root / "grey.npy", IMAGES)
    assert main(["--store", store.uri, "batch", "chw", str(root / "grey.npy")]) == 1
    summary = json.loads((root / "store/batch/chw/output/grey.npy.summary.json").read_text())
    assert summary["error"] == (
        f"batch/chw/input/grey.npy: array shape [5, {SIDE}, {SIDE}] does not fit input 'x' "
        f"[-1, 1, {SIDE}, {SIDE}]; rows must have shape [1, {SIDE}, {SIDE}]; these look like "
        "greyscale images [N, H, W] without their channel axis of 1, which this model takes "
        "(numpy: images[:, None])"
    )


@pytest.mark.parametrize(("model", "one"), [("chw", "image[None]"), ("hwc", "image[..., None]")])
def test_a_jsonl_line_of_a_grey_image_without_its_channel_axis_says_so(
    root: Path, model: str, one: str
) -> None:
    """A JSONL line holding one grey image as numpy holds it ([H, W], image.tolist()) was a bad
    row "must have shape [1, 12, 12] per row; got [12, 12]", nothing said of the channel axis
    predict and a .npy file name (rev17 2); the fix it names is scored as onnxruntime does."""
    store = LocalStore(root / "store")
    fixed = IMAGES[0][None] if model == "chw" else IMAGES[0][..., None]
    path = root / f"lines-{model}.jsonl"
    path.write_text(
        f'{{"x": {json.dumps(IMAGES[0].tolist())}}}\n{{"x": {json.dumps(fixed.tolist())}}}\n'
    )
    assert main(["--store", store.uri, "batch", model, str(path)]) == 0
    out = f"batch/{model}/output/lines-{model}.jsonl"
    row = "[1, 12, 12]" if model == "chw" else "[12, 12, 1]"
    assert json.loads(store.get_bytes(f"{out}.errors.jsonl")) == {
        "line": 1,
        "error": f"input 'x' must have shape {row} per row; got [12, 12]; this looks like a "
        "greyscale image [H, W] without its channel axis of 1, which this model takes "
        f"(numpy: {one}.tolist())",
    }
    session = ort.InferenceSession(str(root / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    (scored,) = store.get_bytes(out).splitlines()
    np.testing.assert_allclose(
        json.loads(scored)["pred_logits"], session.run(None, {"x": fixed[None]})[0][0], rtol=1e-5
    )


def test_baseline_names_one_grey_image_saved_as_numpy_holds_it(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`np.save` of one grey image: [H, W] was told only "holds rows of 12 values; ... reads
    144 a row" where batch names the channel axis; [1, H, W] (with its channel) got both the
    one-row and the [N, H, W] hint, two fixes for one array (rev17 3)."""
    store = LocalStore(root / "store")
    np.save(root / "hw.npy", IMAGES[0])
    np.save(root / "row.npy", IMAGES[0][None])
    capsys.readouterr()
    assert main(["--store", store.uri, "baseline", "chw:1", str(root / "hw.npy")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"array shape [{SIDE}, {SIDE}] holds rows of {SIDE} values; chw:1's input 'x' reads "
            f"{SIDE * SIDE} a row ([N, 1, {SIDE}, {SIDE}]); these look like one greyscale image "
            "[H, W] without its batch axis and its channel axis of 1, which this model takes "
            "(numpy: image[None, None])"
        )
    )
    assert main(["--store", store.uri, "baseline", "chw:1", str(root / "row.npy")]) == 1
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            f"rows must have shape [1, {SIDE}, {SIDE}]; this array is one row without its batch "
            f"axis: save it as an array of rows, [1, 1, {SIDE}, {SIDE}] (numpy: "
            "np.save(path, row[None]))"
        )
    )
