"""An image client's usual first tries at a model that takes pixel values, through the predict
function on API Gateway v2 events: the photo's file as the body (curl --data-binary, requests'
data=), a multipart upload (curl -F), TF-Serving's {"b64": ...} records. Each refusal says the
API takes pixel values and how to decode the image (it said "not UTF-8", or to publish with
--features naming the image's fields)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_image_fixed_batch import SIDE, fixed_batch_cnn

DECODE = "decode it first (numpy.asarray(PIL.Image.open(file)))"
ROUTES = ["/models/cnn/predict", "/v2/models/cnn/infer", "/models/cnn/explain"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("image-uploads")
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "cnn.onnx", batch="N")
    assert main(["--store", store.uri, "publish", str(path), "--name", "cnn"]) == 0
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return service_from_env({"AIAAS_MODEL": "cnn"}, pool)


def _encoded(kind: str) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=kind)
    return out.getvalue()


def _post(service: PredictService, route: str, body: bytes, kind: str) -> tuple[int, str]:
    event = http_event("POST", route, body, headers={"content-type": kind}, b64=True)
    response = service.handle(event)
    return response["statusCode"], body_of(response)["error"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("kind", "name"), [("PNG", "a PNG"), ("JPEG", "a JPEG"), ("GIF", "a GIF")])
def test_an_image_file_as_the_body_is_told_to_send_its_pixels(
    service: PredictService, route: str, kind: str, name: str
) -> None:
    status, error = _post(service, route, _encoded(kind), f"image/{kind.lower()}")
    assert status == 400
    assert error.startswith(f"request body is {name} image; models take pixel values as JSON")
    assert error.endswith(DECODE)


@pytest.mark.parametrize("route", ROUTES)
def test_a_multipart_upload_is_told_to_send_the_json_itself(
    service: PredictService, route: str
) -> None:
    boundary = "------------------------d74496d66958873e"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="img.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + _encoded("PNG")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, error = _post(service, route, body, f"multipart/form-data; boundary={boundary}")
    assert status == 400
    assert error.startswith("request body is a multipart/form-data upload (curl -F")
    assert "send the JSON itself as the body" in error and error.endswith(DECODE)


@pytest.mark.parametrize(
    "record",
    [
        {"b64": base64.b64encode(_encoded("PNG")).decode()},
        {"image_bytes": {"b64": base64.b64encode(_encoded("JPEG")).decode()}},
    ],
)
def test_tf_serving_b64_records_are_told_to_decode_the_image(
    service: PredictService, record: dict
) -> None:
    body = json.dumps({"instances": [record]}).encode()
    status, error = _post(service, "/models/cnn/predict", body, "application/json")
    assert status == 422
    assert error.startswith("instances[0] holds an encoded image ({")
    assert "TF-Serving's form): models take pixel values" in error and error.endswith(DECODE)
    assert "--features" not in error


def test_a_vertex_image_record_to_an_input_named_image_is_not_called_a_misspelling(
    tmp_path: Path,
) -> None:
    """Vertex's {"image_bytes": {"b64": ...}} to a model whose input is `image` was first
    guessed "a misspelling of 'image'", as if renaming the field would do (hunt_today4 #7)."""
    model = onnx.load(fixed_batch_cnn(tmp_path / "cnn.onnx", batch="N"))
    model.graph.input[0].name = "image"
    model.graph.node[0].input[0] = "image"
    onnx.save(model, tmp_path / "image.onnx")
    store = LocalStore(tmp_path / "store")
    assert (
        main(["--store", store.uri, "publish", str(tmp_path / "image.onnx"), "--name", "cnn"]) == 0
    )
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    served = service_from_env({"AIAAS_MODEL": "cnn"}, pool)
    record = {"image_bytes": {"b64": base64.b64encode(_encoded("JPEG")).decode()}, "key": "1"}
    body = json.dumps({"instances": [record]}).encode()
    status, error = _post(served, "/models/cnn/predict", body, "application/json")
    assert status == 422
    assert error == (
        'instances[0] holds an encoded image ({"image_bytes": {"b64": ...}}, TF-Serving\'s '
        "form): models take pixel values as JSON (nested lists of numbers, or OIP tensors), not "
        f"an encoded image: {DECODE}"
    )
    misspelt = {"imagee": np.zeros((3, SIDE, SIDE)).tolist()}  # a real misspelling still is one
    body = json.dumps({"instances": [misspelt]}).encode()
    status, error = _post(served, "/models/cnn/predict", body, "application/json")
    assert status == 422
    assert error.startswith("instances[0] has unknown input 'imagee' (a misspelling of 'image'")


def test_an_image_record_is_not_told_to_name_features(service: PredictService) -> None:
    image = np.zeros((3, SIDE, SIDE)).tolist()
    body = json.dumps({"instances": [{"image": image}]}).encode()
    status, error = _post(service, "/models/cnn/predict", body, "application/json")
    assert (status, error) == (
        422,
        f"instances[0] has unknown input 'image'; this model takes x: float32 [-1, 3, {SIDE}, "
        f"{SIDE}]: send each instance as its values, not a record",
    )
