"""Open Inference Protocol v2 routes of the predict function, JSON and binary, and their errors."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict.service import PredictService
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    digits_service,
    http_event,
    publish_digits,
    reference_logits,
)

ROWS = (np.arange(2 * 64, dtype=np.float32).reshape(2, 64) % 13) / 4
INFER = f"/v2/models/{MODEL}/infer"


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("v2")
    store, path = publish_digits(root)
    # Version 2: another model with the same signature, published but not promoted.
    other = onnx_factory.linear_classifier(root / "v2.onnx", features=64, classes=10, seed=3)
    labels = tuple(str(i) for i in range(10))
    Registry(LocalStore(store)).publish(
        onnx_factory.manifest_for(other, MODEL, "2", labels=labels), other
    )
    return path


@pytest.fixture(scope="module")
def service(onnx_path: Path) -> PredictService:
    return digits_service(onnx_path.parent)


def call(
    service: PredictService, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    raw = json.dumps(body) if isinstance(body, dict) else body
    response = service.handle(http_event(method, path, raw, **kw))
    return response["statusCode"], body_of(response)


def json_request(rows: np.ndarray = ROWS, **extra: Any) -> dict[str, Any]:
    tensor = {
        "name": "x",
        "shape": list(rows.shape),
        "datatype": "FP32",
        "data": rows.ravel().tolist(),
    }
    return {"inputs": [tensor], **extra}


# ---- metadata, readiness, health -----------------------------------------------------------

METADATA = {
    "name": MODEL,
    "versions": ["1", "2"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
    "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
}


@pytest.mark.parametrize(
    ("path", "version"), [(f"/v2/models/{MODEL}", "1"), (f"/v2/models/{MODEL}/versions/2", "2")]
)
def test_model_metadata(service: PredictService, path: str, version: str) -> None:
    status, body = call(service, "GET", path)
    labels = [str(i) for i in range(10)]
    params = {"version": version, "task": "classification", "labels": labels, "features": []}
    assert (status, body) == (200, {**METADATA, "parameters": params})


def test_model_ready_serves_the_production_alias(service: PredictService) -> None:
    assert call(service, "GET", f"/v2/models/{MODEL}/ready") == (
        200,
        {"name": MODEL, "version": "1", "ready": True},
    )


def test_version_ready(service: PredictService) -> None:
    assert call(service, "GET", f"/v2/models/{MODEL}/versions/2/ready") == (
        200,
        {"name": MODEL, "version": "2", "ready": True},
    )


def test_health_and_server_metadata_routes(service: PredictService) -> None:
    assert call(service, "GET", "/v2/health/live") == (200, {"live": True})
    assert call(service, "GET", "/v2/health/ready") == (
        200,
        {"name": MODEL, "version": "1", "ready": True},
    )
    assert call(service, "GET", "/v2") == (
        200,
        {
            "name": "aiaas",
            "version": "0.1.0",
            "extensions": ["binary_tensor_data", "classification"],
        },
    )


# ---- infer, JSON ---------------------------------------------------------------------------


def test_infer_json(service: PredictService, onnx_path: Path) -> None:
    status, body = call(service, "POST", INFER, json_request(id="req-7"))
    assert status == 200, body
    assert (body["id"], body["model_name"], body["model_version"]) == ("req-7", MODEL, "1")
    (out,) = body["outputs"]
    assert (out["name"], out["datatype"], out["shape"]) == ("logits", "FP32", [2, 10])
    expected = reference_logits(onnx_path, ROWS)
    np.testing.assert_allclose(np.reshape(out["data"], (2, 10)), expected, rtol=1e-5, atol=1e-6)


def test_infer_a_pinned_version(service: PredictService, onnx_path: Path) -> None:
    status, body = call(service, "POST", f"/v2/models/{MODEL}/versions/2/infer", json_request())
    assert (status, body["model_version"]) == (200, "2")
    v1 = reference_logits(onnx_path, ROWS)
    assert not np.allclose(np.reshape(body["outputs"][0]["data"], (2, 10)), v1)
    status, body = call(service, "POST", f"/v2/models/{MODEL}/versions/1/infer", json_request())
    assert (status, body["model_version"]) == (200, "1")


def test_infer_accepts_nested_data(service: PredictService) -> None:
    doc = json_request()
    doc["inputs"][0]["data"] = ROWS.tolist()
    status, body = call(service, "POST", INFER, doc)
    assert (status, body["outputs"][0]["shape"]) == (200, [2, 10])


# ---- infer, binary tensor extension --------------------------------------------------------


def binary_event(
    header: dict[str, Any], payload: bytes, header_length: int | None = None
) -> dict[str, Any]:
    head = json.dumps(header).encode()
    length = len(head) if header_length is None else header_length
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(length),
    }
    return http_event("POST", INFER, head + payload, headers=headers, b64=True)


def test_header_length_zero_is_a_json_body(service: PredictService) -> None:
    """Triton reads Inference-Header-Content-Length: 0 as no header (the whole body is JSON);
    a client that always sends the header sends 0 when it has no binary tensor."""
    event = binary_event(json_request(), b"", header_length=0)
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["outputs"][0]["shape"] == [2, 10]


def test_binary_request_built_byte_by_byte(service: PredictService, onnx_path: Path) -> None:
    header = {
        "id": "bin-1",
        "inputs": [
            {
                "name": "x",
                "shape": [2, 64],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 512},
            }
        ],
        "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
    }
    body = bytearray(json.dumps(header, separators=(",", ":")).encode("utf-8"))
    json_length = len(body)
    for value in ROWS.ravel().tolist():
        body += struct.pack("<f", value)  # IEEE 754 single, little-endian, row-major
    assert len(body) == json_length + 512
    event = http_event(
        "POST",
        INFER,
        base64.b64encode(bytes(body)).decode("ascii"),
        headers={
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(json_length),
        },
    )
    event["isBase64Encoded"] = True  # the body above is already base64, as API Gateway sends it
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    assert response["isBase64Encoded"] is True
    raw = base64.b64decode(response["body"])
    length = int(response["headers"]["inference-header-content-length"])
    doc = json.loads(raw[:length])
    assert doc["id"] == "bin-1"
    assert doc["outputs"] == [
        {
            "name": "logits",
            "datatype": "FP32",
            "shape": [2, 10],
            "parameters": {"binary_data_size": 80},
        }
    ]
    values = struct.unpack("<20f", raw[length:])
    expected = reference_logits(onnx_path, ROWS)
    np.testing.assert_allclose(np.reshape(values, (2, 10)), expected, rtol=1e-5, atol=1e-6)


def test_binary_input_json_output(service: PredictService, onnx_path: Path) -> None:
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 64],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 512},
            }
        ]
    }
    response = service.handle(binary_event(header, ROWS.astype("<f4").tobytes()))
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert "inference-header-content-length" not in response["headers"]
    data = body_of(response)["outputs"][0]["data"]
    np.testing.assert_allclose(
        np.reshape(data, (2, 10)), reference_logits(onnx_path, ROWS), rtol=1e-5, atol=1e-6
    )


def test_json_input_binary_output_for_all(service: PredictService) -> None:
    event = http_event(
        "POST", INFER, json.dumps(json_request(parameters={"binary_data_output": True}))
    )
    response = service.handle(event)
    assert (response["statusCode"], response["isBase64Encoded"]) == (200, True)
    raw = base64.b64decode(response["body"])
    assert len(raw) - int(response["headers"]["inference-header-content-length"]) == 80


def test_binary_and_json_inputs_in_one_request(tmp_path: Path) -> None:
    """Two inputs, one in `data`, one in the binary section: Triton allows mixing them."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["sum"])],
        "add",
        [helper.make_tensor_value_info(n, TensorProto.INT32, ["N", 2]) for n in ("a", "b")],
        [helper.make_tensor_value_info("sum", TensorProto.INT32, ["N", 2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "add.onnx"
    import onnx

    onnx.save(model, path)
    registry = Registry(LocalStore(tmp_path / "store"))
    registry.publish(onnx_factory.manifest_for(path, "adder", "1"), path)
    from functions.predict.service import service_from_env
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.pool import ModelPool

    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "adder"}, pool)
    header = {
        "inputs": [
            {"name": "a", "shape": [1, 2], "datatype": "INT32", "data": [1, 2]},
            {
                "name": "b",
                "shape": [1, 2],
                "datatype": "INT32",
                "parameters": {"binary_data_size": 8},
            },
        ]
    }
    head = json.dumps(header).encode()
    event = http_event(
        "POST",
        "/v2/models/adder/infer",
        head + struct.pack("<2i", 10, 20),
        headers={"inference-header-content-length": str(len(head))},
        b64=True,
    )
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    assert body_of(response)["outputs"][0]["data"] == [11, 22]
