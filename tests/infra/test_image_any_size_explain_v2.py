"""An image model of any height and width explained over OIP's POST /v2/models/{name}/explain,
as tritonclient sends it (typed tensors, binary by default, or JSON data), through the predict
function's real handler and an API Gateway event: each image on its own size, the answer's
typed tensors shaped (images, patches, outputs) and adding up to prediction less base value,
checked against onnxruntime directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from functions.predict.service import PredictService
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.any_size_images import predict_services, publish, reference, softmax


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("any-size-explain-v2")
    publish(root)
    return root


@pytest.fixture(scope="module")
def services(root: Path) -> dict[str, PredictService]:
    return predict_services(root)


def binary_request(images: np.ndarray, **parameters: Any) -> tuple[bytes, dict[str, str]]:
    """The body tritonclient's InferenceServerClient.infer would send (binary_data=True)."""
    tensor = triton.InferInput("x", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images.astype(np.float32))
    body, length = triton.InferenceServerClient.generate_request_body(
        [tensor], request_id="why-img", parameters=parameters
    )
    assert length is not None
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(length),
    }
    return body, headers


def explain_v2(
    service: PredictService, model: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    event = http_event("POST", f"/v2/models/{model}/explain", body, headers=headers, b64=True)
    response = service.handle(event)
    return response["statusCode"], body_of(response)


def tensors(doc: dict[str, Any]) -> dict[str, np.ndarray]:
    return {t["name"]: np.reshape(t["data"], t["shape"]) for t in doc["outputs"]}


@pytest.mark.parametrize("model", ["anysize", "anysize1"])
def test_tritonclients_binary_images_are_explained_on_their_own_size(
    root: Path, services: dict[str, PredictService], model: str
) -> None:
    count = 2 if model == "anysize" else 1  # anysize1's graph takes one image a call
    images = np.random.default_rng(6).random((count, 3, 10, 7), np.float32)
    body, headers = binary_request(images, samples=200, patch=4)
    status, doc = explain_v2(services[model], model, body, headers)
    assert status == 200, doc
    assert (doc["id"], doc["model_name"]) == ("why-img", model)
    assert doc["parameters"]["image_size"] == [10, 7]
    assert doc["parameters"]["features"] == [f"patch_r{r}_c{c}" for r in (0, 4, 8) for c in (0, 4)]
    got = tensors(doc)
    assert got["attributions"].shape == (count, 6, 3)
    # What tritonclient's infer() would hand its caller, read from this answer.
    result = triton.InferResult.from_response_body(orjson.dumps(doc), header_length=None)
    np.testing.assert_array_equal(result.as_numpy("attributions"), got["attributions"])
    for i, image in enumerate(images):
        want = softmax(reference(root / f"{model}.onnx", image))
        np.testing.assert_allclose(got["prediction"][i], want, rtol=1e-5)
        flat = softmax(
            reference(
                root / f"{model}.onnx",
                np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape),
            )
        )
        np.testing.assert_allclose(got["base_value"][i], flat, rtol=1e-5)
    total = got["attributions"].sum(axis=1)
    np.testing.assert_allclose(total, got["prediction"] - got["base_value"], atol=1e-6)


def test_json_tensors_of_another_size_follow_and_match_the_binary_answer(
    services: dict[str, PredictService],
) -> None:
    images = np.random.default_rng(7).random((1, 3, 6, 11), np.float32)
    json_body = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, 3, 6, 11],
                "datatype": "FP32",
                "data": images.ravel().tolist(),
            }
        ],
        "parameters": {"samples": 100, "patch": 3},
    }
    headers = {"content-type": "application/json"}
    status, doc = explain_v2(services["anysize"], "anysize", orjson.dumps(json_body), headers)
    assert status == 200, doc
    assert doc["parameters"]["image_size"] == [6, 11]
    assert tensors(doc)["attributions"].shape == (1, 2 * 4, 3)
    # A header length of 0 is no JSON header (as Triton reads it): the same JSON, the same
    # parameters (the patch was read from an empty header before).
    zero = {**headers, "inference-header-content-length": "0"}
    status, again = explain_v2(services["anysize"], "anysize", orjson.dumps(json_body), zero)
    assert (status, again["parameters"]["patch"]) == (200, 3), again
    body, headers = binary_request(images, samples=100, patch=3)
    status, same = explain_v2(services["anysize"], "anysize", body, headers)
    assert status == 200, same
    np.testing.assert_allclose(
        tensors(same)["attributions"], tensors(doc)["attributions"], atol=1e-6
    )


@pytest.mark.parametrize("size", [(0, 7), (6, 0)])
def test_an_image_of_no_pixels_is_a_422_not_a_500(
    services: dict[str, PredictService], size: tuple[int, int]
) -> None:
    # onnxruntime's "Invalid input shape: {0,7}" from the explain session was a 500.
    error = {"error": f"an image must be at least 1x1 pixels; got {size[0]}x{size[1]}"}
    empty = binary_request(np.zeros((1, 3, *size), np.float32))
    assert explain_v2(services["anysize"], "anysize", *empty) == (422, error)
    # Simple JSON's nested lists can say a width of 0, not a height of 0 ([[[], [], []]]).
    simple = orjson.dumps({"inputs": np.zeros((1, 3, *size)).tolist()})
    response = services["anysize"].handle(http_event("POST", "/models/anysize/explain", simple))
    assert response["statusCode"] == 422
    assert size[0] == 0 or body_of(response) == error


def test_a_bad_patch_or_wrong_channels_are_clear_4xx(
    services: dict[str, PredictService],
) -> None:
    big = binary_request(np.zeros((1, 3, 5, 6), np.float32), patch=7)
    assert explain_v2(services["anysize"], "anysize", *big) == (
        422,
        {"error": "patch must be from 1 to 6; got 7"},
    )
    four = binary_request(np.zeros((1, 4, 5, 6), np.float32))
    status, doc = explain_v2(services["anysize"], "anysize", *four)
    assert status == 422 and "dimension 1 must be 3" in doc["error"], doc
