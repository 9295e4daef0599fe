"""Explanations of an image model of any height and width (torch.onnx.export with H and W in
dynamic_axes): POST /models/{name}/explain on each image's own size, a left-out patch taking
the image's mean colour; `aiaas explain --png`, and `--file` of an .npy or of a JSONL whose
lines differ in size. Predictions and base values are checked against onnxruntime directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict.service import PredictService
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.any_size_images import predict_services, publish, reference, softmax

MIXED = [(0, (10, 12)), (1, (6, 6)), (2, (10, 12)), (3, (5, 9))]  # id, (height, width)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("any-size-explain")
    publish(root)
    np.save(root / "images.npy", np.random.default_rng(2).random((3, 3, 9, 13), np.float32))
    rng = np.random.default_rng(6)
    lines = [json.dumps({"id": i, "x": rng.random((3, *hw)).round(4).tolist()}) for i, hw in MIXED]
    bad = [
        json.dumps({"id": "4ch", "x": np.zeros((4, 6, 6)).tolist()}),
        json.dumps({"id": "empty", "x": [[[]], [[]], [[]]]}),  # 3 channels of 1x0 pixels
        json.dumps({"id": "text", "x": "a photo of a cat"}),
        "{not json",
    ]
    # Good and bad lines interleaved, a blank line between: line numbers as an editor shows.
    text = [lines[0], bad[0], lines[1], "", bad[1], lines[2], bad[2], bad[3], lines[3]]
    (root / "mixed.jsonl").write_text("\n".join(text) + "\n")
    return root


@pytest.fixture(scope="module")
def services(root: Path) -> dict[str, PredictService]:
    return predict_services(root)


def explain(service: PredictService, model: str, doc: Any) -> tuple[int, Any]:
    response = service.handle(http_event("POST", f"/models/{model}/explain", json.dumps(doc)))
    return response["statusCode"], body_of(response)


def mean_colour(image: np.ndarray) -> np.ndarray:
    return np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape)


@pytest.mark.parametrize("model", ["anysize", "anysize1"])
def test_an_image_is_explained_patch_by_patch_on_its_own_size(
    root: Path, services: dict[str, PredictService], model: str
) -> None:
    image = np.random.default_rng(3).random((3, 10, 12), np.float32)
    body = {"inputs": [image.tolist()], "parameters": {"samples": 300, "patch": 4}}
    status, doc = explain(services[model], model, body)
    assert status == 200, doc
    assert doc["features"] == [f"patch_r{r}_c{c}" for r in (0, 4, 8) for c in (0, 4, 8)]
    assert doc["parameters"]["image_size"] == [10, 12]
    assert doc["parameters"]["background_rows"] == 1
    (row,) = doc["explanations"]
    path = root / f"{model}.onnx"
    np.testing.assert_allclose(row["prediction"], softmax(reference(path, image)), rtol=1e-5)
    # Every patch left out: the image in its mean colour, which is what "absent" means here.
    flat = softmax(reference(path, mean_colour(image)))
    np.testing.assert_allclose(row["base_value"], flat, rtol=1e-5)
    total = np.asarray(row["attributions"]).sum(axis=0)
    np.testing.assert_allclose(total, np.subtract(row["prediction"], flat), atol=1e-6)


def test_requests_of_other_sizes_follow_on_the_same_function(
    root: Path, services: dict[str, PredictService]
) -> None:
    rng = np.random.default_rng(4)
    for height, width in ((6, 6), (12, 5), (6, 6)):
        images = rng.random((2, 3, height, width), np.float32)
        body = {"inputs": images.tolist(), "parameters": {"samples": 100, "patch": 3}}
        status, doc = explain(services["anysize"], "anysize", body)
        assert status == 200, doc
        assert doc["parameters"]["image_size"] == [height, width]
        assert len(doc["features"]) == -(-height // 3) * -(-width // 3)
        for image, row in zip(images, doc["explanations"], strict=True):
            want = softmax(reference(root / "anysize.onnx", image))
            np.testing.assert_allclose(row["prediction"], want, rtol=1e-5)


@pytest.mark.parametrize("patch", [7, 0])  # 0 was taken as no patch asked: the default size
def test_a_patch_outside_the_image_is_refused(
    services: dict[str, PredictService], patch: int
) -> None:
    body = {"inputs": [np.zeros((3, 5, 6)).tolist()], "parameters": {"patch": patch}}
    status, doc = explain(services["anysize"], "anysize", body)
    assert (status, doc) == (422, {"error": f"patch must be from 1 to 6; got {patch}"})


def test_images_with_the_wrong_channels_are_refused(services: dict[str, PredictService]) -> None:
    status, doc = explain(
        services["anysize"], "anysize", {"inputs": [np.zeros((4, 5, 6)).tolist()]}
    )
    assert (status, doc) == (
        422,
        {
            "error": "input 'x' expects shape [-1, 3, -1, -1]; got [1, 4, 5, 6] (dimension 1 must be 3)"
        },
    )


def test_the_cli_draws_the_image_and_its_patches(root: Path, tmp_path: Path) -> None:
    image = np.random.default_rng(5).random((3, 9, 14))
    (tmp_path / "one.json").write_text(json.dumps({"inputs": [image.tolist()]}))
    store = LocalStore(root / "store").uri
    args = ["--store", store, "explain", "anysize", "--inputs", f"@{tmp_path / 'one.json'}"]
    assert main([*args, "--samples", "100", "--png", str(tmp_path / "why.png")]) == 0
    assert (tmp_path / "why.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_cli_explains_an_npy_of_images(root: Path, tmp_path: Path) -> None:
    store = LocalStore(root / "store").uri
    out = tmp_path / "why.jsonl"
    args = ["--store", store, "explain", "anysize1", "--file", str(root / "images.npy")]
    assert main([*args, "--samples", "100", "--out", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["row"] for line in lines] == [0, 1, 2]
    images = np.load(root / "images.npy")
    for image, line in zip(images, lines, strict=True):
        want = softmax(reference(root / "anysize1.onnx", image))
        np.testing.assert_allclose(line["prediction"], want, rtol=1e-5)


@pytest.mark.parametrize("model", ["anysize", "anysize1"])
def test_the_cli_explains_jsonl_images_of_several_sizes_in_line_order(
    root: Path, tmp_path: Path, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(root / "store").uri
    out = tmp_path / "why.jsonl"
    args = ["--store", store, "explain", model, "--file", str(root / "mixed.jsonl")]
    assert main([*args, "--samples", "64", "--patch", "4", "--out", str(out)]) == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(line["row"], line["line"]) for line in lines] == [
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 5),
        (4, 6),
        (5, 7),
        (6, 8),
        (7, 9),
    ]
    errors = {line["line"]: line["error"] for line in lines if "error" in line}
    assert errors == {
        2: "input 'x' must have shape [3, any, any] per row; got [4, 6, 6]",
        5: "an image must be at least 1x1 pixels; got 1x0",
        7: "input 'x' must hold float32 numbers; got text",
        8: errors[8],
    }
    assert errors[8].startswith("not valid JSON")
    # Each line carries its input's own fields (not the image), to join back on; an error
    # line too, when its line is an object at all.
    ids = [line.get("record", {}).get("id") for line in lines]
    assert ids == [0, "4ch", 1, "empty", 2, "text", None, 3]
    assert all(set(line.get("record", {})) <= {"id"} for line in lines)
    sent = (root / "mixed.jsonl").read_text().splitlines()
    good = [line for line in lines if "error" not in line]
    assert [line["line"] for line in good] == [1, 3, 6, 9]
    for line, (_, (height, width)) in zip(good, MIXED, strict=True):
        image = np.asarray(json.loads(sent[line["line"] - 1])["x"], np.float32)
        assert image.shape == (3, height, width)
        assert len(line["features"]) == -(-height // 4) * -(-width // 4)
        want = softmax(reference(root / f"{model}.onnx", image))
        np.testing.assert_allclose(line["prediction"], want, rtol=1e-5)
        flat = softmax(reference(root / f"{model}.onnx", mean_colour(image)))
        total = np.asarray(line["attributions"]).sum(axis=0)
        np.testing.assert_allclose(total, np.subtract(line["prediction"], flat), atol=1e-6)
    assert "explained 4 of 8 rows" in capsys.readouterr().out
