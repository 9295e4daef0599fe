"""HTTP API v2.0 events into the predict function: golden events, base64, headers, limits.

Also home of the helpers the other predict tests share: `http_event` builds a complete v2.0
event, `publish_digits` publishes the reference MLP as `digits-mlp` into a local store.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import orjson
import pytest

from bench.models import publish_mlp
from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler
from infra.template import functions, load_template

EVENTS = Path(__file__).resolve().parents[2] / "events"
MODEL = "digits-mlp"
PREDICT_EVENTS = (
    "predict_simple",
    "predict_explain",
    "predict_version_simple",
    "predict_v2_infer_json",
    "predict_v2_infer_binary",
    "predict_v2_metadata",
    "predict_v2_ready",
)
HEALTH_EVENTS = ("health_live", "health_ready", "server_metadata")


def http_event(
    method: str,
    path: str,
    body: bytes | str | None = None,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    b64: bool = False,
) -> dict[str, Any]:
    """A complete API Gateway HTTP API payload 2.0 event, as the cloud sends it."""
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"host": "api.example.com", "user-agent": "pytest", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "10.0.0.1",
            },
            "requestId": "test-request",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "timeEpoch": 1795442712000,
        },
        "isBase64Encoded": b64,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        event["body"] = base64.b64encode(raw).decode() if b64 else raw.decode()
    return event


def publish_digits(root: Path) -> tuple[Path, Path]:
    """Publish the MLP 64->256->256->10 as digits-mlp:1 @production; (store dir, onnx path)."""
    store = root / "store"
    return store, publish_mlp(store, MODEL)


def digits_service(root: Path, **env: str) -> PredictService:
    """A predict service for digits-mlp on `root`'s store, with its own artifact cache."""
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return service_from_env({"AIAAS_MODEL": MODEL, **env}, pool)


def reference_logits(onnx_path: Path, rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["logits"], {"x": rows.astype(np.float32)})[0])


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def body_of(response: Mapping[str, Any]) -> Any:
    return orjson.loads(response["body"])


# ---- golden events ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return publish_digits(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def predict_handler(published: tuple[Path, Path]) -> Callable[..., Any]:
    store, _ = published
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(store.parent / "cache"),
    }
    return load_handler("functions.predict.handler.handler", env)


@pytest.fixture(scope="module")
def health_handler(published: tuple[Path, Path]) -> Callable[..., Any]:
    return load_handler("functions.health.handler.handler", {"AIAAS_STORE": str(published[0])})


def golden_rows() -> np.ndarray:
    event = load_event("predict_simple")
    return np.asarray(json.loads(event["body"])["inputs"], dtype=np.float32)


@pytest.mark.parametrize("name", PREDICT_EVENTS + HEALTH_EVENTS)
def test_golden_event_is_a_complete_v2_event_for_a_template_route(name: str) -> None:
    event = load_event(name)
    method, path = event["requestContext"]["http"]["method"], event["rawPath"]
    assert event["version"] == "2.0"
    assert event["requestContext"]["http"]["path"] == path
    # routeKey names the route as the template declares it, `{param}`s and all.
    route = path
    for param, value in event.get("pathParameters", {}).items():
        route = route.replace(f"/{value}/", f"/{{{param}}}/")
    assert event["routeKey"] == event["requestContext"]["routeKey"] == f"{method} {route}"
    assert all(key == key.lower() for key in event["headers"])
    assert event["requestContext"]["stage"] == "$default"
    assert isinstance(event["isBase64Encoded"], bool)
    specs = functions(load_template())
    owner = "Health" if name in HEALTH_EVENTS else "Predictdigitsmlp"
    assert (method, route) in {(r.method, r.path) for r in specs[owner].routes}
    if "body" in event:
        raw = (
            base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
        )
        assert int(event["headers"]["content-length"]) == len(raw)


def test_golden_binary_event_is_json_header_then_little_endian_floats() -> None:
    event = load_event("predict_v2_infer_binary")
    assert event["isBase64Encoded"] is True
    raw = base64.b64decode(event["body"])
    length = int(event["headers"]["inference-header-content-length"])
    header = json.loads(raw[:length])
    assert header["inputs"][0]["parameters"]["binary_data_size"] == len(raw) - length == 2 * 64 * 4
    floats = struct.unpack("<128f", raw[length:])
    np.testing.assert_array_equal(np.asarray(floats).reshape(2, 64), golden_rows())


def test_golden_predict_simple(
    predict_handler: Callable[..., Any], published: tuple[Path, Path]
) -> None:
    response = predict_handler(load_event("predict_simple"), None)
    assert response["statusCode"] == 200, response["body"]
    assert response["headers"]["content-type"] == "application/json"
    doc = body_of(response)
    assert (doc["model"], doc["version"]) == (MODEL, "1")
    expected = reference_logits(published[1], golden_rows())
    np.testing.assert_allclose(doc["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    assert [p["label"] for p in doc["predictions"]] == [str(i) for i in expected.argmax(axis=1)]
    assert all(len(p["top_k"]) == 3 for p in doc["predictions"])  # rawQueryString top_k=3


def test_golden_predict_v2_infer_json(
    predict_handler: Callable[..., Any], published: tuple[Path, Path]
) -> None:
    response = predict_handler(load_event("predict_v2_infer_json"), None)
    assert response["statusCode"] == 200, response["body"]
    doc = body_of(response)
    assert doc["id"] == "golden-json-1"
    assert (doc["model_name"], doc["model_version"]) == (MODEL, "1")
    (out,) = doc["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("logits", "FP32", [2, 10])
    expected = reference_logits(published[1], golden_rows())
    np.testing.assert_allclose(np.reshape(out["data"], (2, 10)), expected, rtol=1e-5, atol=1e-6)


def test_golden_predict_v2_infer_binary(
    predict_handler: Callable[..., Any], published: tuple[Path, Path]
) -> None:
    response = predict_handler(load_event("predict_v2_infer_binary"), None)
    assert response["statusCode"] == 200, response["body"]
    assert response["isBase64Encoded"] is True
    assert response["headers"]["content-type"] == "application/octet-stream"
    raw = base64.b64decode(response["body"])
    length = int(response["headers"]["inference-header-content-length"])
    doc = json.loads(raw[:length])
    assert doc["id"] == "golden-binary-1"
    (out,) = doc["outputs"]
    assert out == {
        "name": "logits",
        "datatype": "FP32",
        "shape": [2, 10],
        "parameters": {"binary_data_size": 80},
    }
    logits = np.frombuffer(raw[length:], dtype="<f4").reshape(2, 10)
    expected = reference_logits(published[1], golden_rows())
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)


def test_golden_predict_v2_metadata_and_ready(predict_handler: Callable[..., Any]) -> None:
    metadata = predict_handler(load_event("predict_v2_metadata"), None)
    assert metadata["statusCode"] == 200
    assert body_of(metadata) == {
        "name": MODEL,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
        "parameters": {
            "version": "1",
            "task": "classification",
            "labels": [str(i) for i in range(10)],
            "features": [],
        },
    }
    ready = predict_handler(load_event("predict_v2_ready"), None)
    assert (ready["statusCode"], body_of(ready)) == (
        200,
        {"name": MODEL, "version": "1", "ready": True},
    )


def test_golden_health_events(health_handler: Callable[..., Any]) -> None:
    live = health_handler(load_event("health_live"), None)
    assert (live["statusCode"], body_of(live)) == (200, {"live": True})
    ready = health_handler(load_event("health_ready"), None)
    assert (ready["statusCode"], body_of(ready)) == (200, {"ready": True})
    meta = health_handler(load_event("server_metadata"), None)
    assert meta["statusCode"] == 200
    assert body_of(meta) == {
        "name": "aiaas",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }


# ---- event parsing ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(published: tuple[Path, Path]) -> PredictService:
    return digits_service(published[0].parent, AIAAS_MAX_PAYLOAD_BYTES="4096")


ROW = [float(i % 17) for i in range(64)]


def test_base64_json_body_on_the_simple_route(service: PredictService) -> None:
    body = json.dumps({"inputs": [ROW]})
    plain = service.handle(http_event("POST", f"/models/{MODEL}/predict", body))
    encoded = service.handle(http_event("POST", f"/models/{MODEL}/predict", body, b64=True))
    assert plain["statusCode"] == encoded["statusCode"] == 200
    assert plain["body"] == encoded["body"]


def test_mixed_case_headers_on_a_binary_request(service: PredictService) -> None:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 256},
                }
            ]
        }
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "INFERENCE-Header-Content-LENGTH": str(len(head)),
    }
    body = head + struct.pack("<64f", *ROW)
    event = http_event("POST", f"/v2/models/{MODEL}/infer", body, headers=headers, b64=True)
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["outputs"][0]["shape"] == [1, 10]


def test_lower_case_method_and_path_from_request_context(service: PredictService) -> None:
    event = http_event("get", f"/v2/models/{MODEL}/ready")
    del event["rawPath"]  # API Gateway always sends it; fall back to requestContext.http.path
    response = service.handle(event)
    assert (response["statusCode"], body_of(response)["ready"]) == (200, True)


def test_query_string_parameters_reach_the_route(service: PredictService) -> None:
    body = json.dumps({"inputs": [ROW]})
    event = http_event("POST", f"/models/{MODEL}/predict", body, query={"top_k": "10"})
    response = service.handle(event)
    assert response["statusCode"] == 200
    assert len(body_of(response)["predictions"][0]["top_k"]) == 10


@pytest.mark.parametrize("b64", [False, True])
def test_body_at_the_payload_limit_passes_and_one_byte_over_is_413(
    service: PredictService, b64: bool
) -> None:
    # Padded JSON whose length is exactly the limit; base64 does not round up the size.
    doc = json.dumps({"inputs": [ROW]})
    at_limit = doc + " " * (4096 - len(doc))
    ok = service.handle(http_event("POST", f"/models/{MODEL}/predict", at_limit, b64=b64))
    assert ok["statusCode"] == 200, ok["body"]
    over = service.handle(http_event("POST", f"/models/{MODEL}/predict", at_limit + " ", b64=b64))
    assert over["statusCode"] == 413
    assert body_of(over) == {"error": "request body is over the 4096 byte limit"}


def test_default_payload_limit_is_6_mib(published: tuple[Path, Path]) -> None:
    service = digits_service(published[0].parent)
    event = http_event("POST", f"/v2/models/{MODEL}/infer", b"\0" * (6 * 1024 * 1024 + 1), b64=True)
    response = service.handle(event)
    assert response["statusCode"] == 413
    assert body_of(response) == {"error": "request body is over the 6291456 byte limit"}


@pytest.mark.parametrize(
    "event",
    [{}, {"version": "2.0"}, {"requestContext": {"http": {}}}, {"requestContext": "x"}],
    ids=["empty", "no-context", "no-method", "context-not-object"],
)
def test_not_an_http_api_event_is_400(service: PredictService, event: dict[str, Any]) -> None:
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response) == {"error": "not an API Gateway HTTP API (payload 2.0) event"}


def test_a_rest_api_event_is_named_with_its_fix(service: PredictService) -> None:
    """`sam local generate-event apigateway aws-proxy`, verbatim: a REST API's (payload 1.0)
    event was told only what it is not."""
    event = json.loads((Path(__file__).parent / "rest_api_proxy_event.json").read_text())
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response) == {
        "error": "not an API Gateway HTTP API (payload 2.0) event: this is a payload 1.0 event "
        "(a REST API, or an HTTP API integration with PayloadFormatVersion 1.0); route it "
        "through an HTTP API with PayloadFormatVersion 2.0, as template.yaml does"
    }
