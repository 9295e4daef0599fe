"""The 422s an image user gets for the usual mistakes, through the predict handler on API
Gateway v2 events: the channels in the other order (HWC to a CHW model and back) is named as
such with the transpose that fixes it, and an explanation without a background points a model
with an image input at an NPY of its images, not a CSV."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_image_fixed_batch import SIDE, fixed_batch_cnn


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("image-errors")
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "cnn.onnx", batch="N")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn"]) == 0
    return root


def post(root: Path, route: str, doc: Any) -> tuple[int, Any]:
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    response = service_from_env({"AIAAS_MODEL": "cnn"}, pool).handle(
        http_event("POST", route, json.dumps(doc))
    )
    return response["statusCode"], body_of(response)


def test_channels_last_sent_to_a_channels_first_model_says_so(root: Path) -> None:
    images = np.zeros((2, SIDE, SIDE, 3)).tolist()
    status, doc = post(root, "/models/cnn/predict", {"inputs": images})
    assert status == 422
    assert doc["error"] == (
        f"input 'x' expects shape [-1, 3, {SIDE}, {SIDE}]; got [2, {SIDE}, {SIDE}, 3] "
        f"(dimension 1 must be 3); these look like channels-last images [H, W, C]: this "
        "model takes channels first [C, H, W] (numpy: images.transpose(0, 3, 1, 2))"
    )


def test_one_channels_last_image_without_its_batch_axis_says_so_too(root: Path) -> None:
    status, doc = post(root, "/models/cnn/predict", {"inputs": np.zeros((SIDE, SIDE, 3)).tolist()})
    assert status == 422
    assert "look like channels-last images [H, W, C]" in doc["error"], doc


def test_a_wrong_size_gets_no_channel_hint(root: Path) -> None:
    status, doc = post(root, "/models/cnn/predict", {"inputs": np.zeros((1, 3, 5, 5)).tolist()})
    assert status == 422
    assert doc["error"] == (
        f"input 'x' expects shape [-1, 3, {SIDE}, {SIDE}]; got [1, 3, 5, 5] (dimension 2 must be "
        f"{SIDE})"
    )


def test_an_image_model_without_a_background_is_pointed_at_an_npy(root: Path) -> None:
    body = {"inputs": np.zeros((1, 3, SIDE, SIDE)).tolist()}
    status, doc = post(root, "/models/cnn/explain", body)
    assert status == 422
    assert (
        "`aiaas baseline cnn:1 IMAGES.npy` (a sample of the images it was trained on"
        in (doc["error"])
    ), doc


def uint8_pixels_model(path: Path, side: int | str = SIDE) -> Path:
    """[N, H, W, 3] uint8 pixels in (H and W `side`: a name, any size), their scaling inside
    the graph (x / 255), mean out."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["f", "scale"], ["unit"]),
            helper.make_node("ReduceMean", ["unit"], ["y"], axes=[1, 2, 3], keepdims=0),
        ],
        "pixels",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, ["N", side, side, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        initializer=[helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_scaled_pixels_sent_to_a_uint8_model_are_told_to_send_raw_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = uint8_pixels_model(tmp_path / "pixels.onnx")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn"]) == 0
    scaled = np.full((1, SIDE, SIDE, 3), 0.5)
    status, doc = post(tmp_path, "/models/cnn/predict", {"inputs": scaled.tolist()})
    assert status == 422
    assert doc["error"] == (
        "input 'x' expects uint8; 0.5 is not a whole number; these look like pixels scaled to "
        "[0, 1]: this model takes uint8 pixels 0-255 (its scaling is in the graph)"
    )
    status, doc = post(tmp_path, "/models/cnn/predict", {"inputs": (scaled * 600).tolist()})
    assert (status, doc) == (
        422,
        {
            "error": "input 'x' expects uint8; values are outside [0, 255] (300 at index [0, 0, 0, 0])"
        },
    )
    status, doc = post(tmp_path, "/models/cnn/predict", {"inputs": (scaled * 255 + 0.5).tolist()})
    assert status == 200, doc
    np.testing.assert_allclose(doc["outputs"]["y"], [128 / 255], rtol=1e-6)


def test_a_batch_of_scaled_pixels_says_the_same(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path = uint8_pixels_model(tmp_path / "pixels.onnx")
    assert main(["--store", store.uri, "publish", str(path), "--name", "px"]) == 0
    np.save(tmp_path / "scaled.npy", np.full((2, SIDE, SIDE, 3), 0.25, np.float32))
    assert main(["--store", store.uri, "batch", "px", str(tmp_path / "scaled.npy")]) == 1
    errors = (tmp_path / "store/batch/px/output/scaled.npy.errors.jsonl").read_text().splitlines()
    assert json.loads(errors[1]) == {
        "row": 1,
        "error": "input 'x' at index [0, 0, 0] is 0.25; expected an integer in [0, 255]; these look like "
        "pixels scaled to [0, 1]: this model takes uint8 pixels 0-255 (its scaling is in the graph)",
    }


def test_explaining_a_file_without_a_background_fails_once_up_front(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It used to try every row (halving each 64-row request down to single rows) and write the
    # same error once per image.
    np.save(root / "images.npy", np.zeros((5, 3, SIDE, SIDE), np.float32))
    out = root / "why.jsonl"
    store = LocalStore(root / "store")
    args = ["--store", store.uri, "explain", "cnn", "--file", str(root / "images.npy")]
    assert main([*args, "--out", str(out)]) == 1
    assert "has no background to explain against" in capsys.readouterr().err
    assert not out.exists()


def test_a_batch_of_channels_last_images_is_told_the_transpose_as_predict_is(root: Path) -> None:
    # Batch said only "rows must have shape [3, 8, 8]", where predict names the transpose.
    store = LocalStore(root / "store")
    np.save(root / "hwc.npy", np.zeros((2, SIDE, SIDE, 3), np.float32))
    assert main(["--store", store.uri, "batch", "cnn", str(root / "hwc.npy")]) == 1
    summary = json.loads((root / "store/batch/cnn/output/hwc.npy.summary.json").read_text())
    assert summary["error"].endswith(
        f"rows must have shape [3, {SIDE}, {SIDE}]; these look like channels-last images "
        "[H, W, C]: this model takes channels first [C, H, W] (numpy: images.transpose(0, 3, 1, 2))"
    ), summary
    lines = [json.dumps({"x": np.zeros((3, SIDE, SIDE)).tolist()})]
    lines.append(json.dumps({"x": np.zeros((SIDE, SIDE, 3)).tolist()}))
    (root / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "batch", "cnn", str(root / "mixed.jsonl")]) == 0
    errors = (root / "store/batch/cnn/output/mixed.jsonl.errors.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in errors] == [
        {
            "line": 2,
            "error": f"input 'x' must have shape [3, {SIDE}, {SIDE}] per row; got [{SIDE}, {SIDE}, "
            "3]; these look like channels-last images [H, W, C]: this model takes channels first "
            "[C, H, W] (numpy: image.transpose(2, 0, 1))",
        }
    ]


@pytest.mark.parametrize("sent", ["iVBORw0KGgoAAAANSUhEUgAAAAg=", ["iVBORw0KGgoAAAANSUhEUgAAAAg="]])
def test_an_encoded_image_sent_as_text_is_told_to_send_pixels(root: Path, sent: Any) -> None:
    # A base64 PNG (what other image APIs take) got "got text or null values, which does not
    # convert safely", which does not say what to send instead.
    status, doc = post(root, "/models/cnn/predict", {"inputs": sent})
    assert status == 422
    assert doc["error"] == (
        "input 'x' expects float32; got text: an image is sent as its pixel values (nested "
        "lists of numbers, or an OIP tensor), not an encoded PNG/JPEG or base64: decode it "
        "first (numpy.asarray(PIL.Image.open(file)))"
    )


def test_a_baseline_of_channels_last_images_is_refused_as_batch_refuses_them(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # It was flattened and stored: a background and drift bins of scrambled pixels, where batch
    # and predict refuse the same array naming the transpose.
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "cnn-bl.onnx", batch="N")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn-bl"]) == 0
    np.save(root / "train-hwc.npy", np.zeros((4, SIDE, SIDE, 3), np.float32))
    capsys.readouterr()
    assert main(["--store", store.uri, "baseline", "cnn-bl", str(root / "train-hwc.npy")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith(
        "these look like channels-last images [H, W, C]: this model takes channels first "
        "[C, H, W] (numpy: images.transpose(0, 3, 1, 2))"
    )
    assert not store.exists("models/cnn-bl/versions/1/background.json")
    np.save(root / "train.npy", np.zeros((4, 3, SIDE, SIDE), np.float32))
    assert main(["--store", store.uri, "baseline", "cnn-bl", str(root / "train.npy")]) == 0


def test_one_image_with_or_without_a_batch_axis_where_predict_takes_both(root: Path) -> None:
    # Predict takes one image as [3, S, S] or [1, 3, S, S]; a batch file of one image saved
    # alone (np.save of a [3, S, S]) was told "rows must have shape [3, S, S]", and a JSONL
    # line of [image] "must have shape [3, S, S] per row; got [1, 3, S, S]": neither said why.
    image = np.random.default_rng(0).uniform(size=(3, SIDE, SIDE)).astype(np.float32)
    alone, batched = (
        post(root, "/models/cnn/predict", {"inputs": x}) for x in (image.tolist(), [image.tolist()])
    )
    assert alone[0] == batched[0] == 200 and alone[1]["outputs"] == batched[1]["outputs"]
    store = LocalStore(root / "store")
    np.save(root / "one.npy", image)
    assert main(["--store", store.uri, "batch", "cnn", str(root / "one.npy")]) == 1
    summary = json.loads((root / "store/batch/cnn/output/one.npy.summary.json").read_text())
    assert summary["error"].endswith(
        f"rows must have shape [3, {SIDE}, {SIDE}]; this array is one row without its batch "
        f"axis: save it as an array of rows, [1, 3, {SIDE}, {SIDE}] (numpy: np.save(path, "
        "row[None]))"
    ), summary
    lines = [json.dumps({"x": image.tolist()}), json.dumps({"x": [image.tolist()]})]
    (root / "one.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "batch", "cnn", str(root / "one.jsonl")]) == 0
    errors = (root / "store/batch/cnn/output/one.jsonl.errors.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in errors] == [
        {
            "line": 2,
            "error": f"input 'x' must have shape [3, {SIDE}, {SIDE}] per row; got [1, 3, {SIDE}, "
            f"{SIDE}]; a line holds one row: leave out its batch axis of 1 (send value[0])",
        }
    ]
    scored = (root / "store/batch/cnn/output/one.jsonl").read_text().splitlines()
    assert len(scored) == 1  # the line of one row is scored as predict answers it
    ((name, answer),) = alone[1]["outputs"].items()
    np.testing.assert_allclose(json.loads(scored[0])[f"pred_{name}"], answer[0], rtol=1e-6)
