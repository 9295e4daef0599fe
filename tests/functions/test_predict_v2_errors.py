"""Open Inference Protocol v2 errors of the predict function: every 400, 404, 405 and 422."""

from __future__ import annotations

from typing import Any

import pytest

from functions.predict.service import PredictService
from tests.functions.test_predict_events import MODEL, body_of, digits_service, publish_digits
from tests.functions.test_predict_v2 import INFER, binary_event, call, json_request


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("v2-errors")
    publish_digits(root)
    return digits_service(root)


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{oops", "request body is not valid JSON"),
        ("[]", "the request body must be a JSON object"),
        ({"inputs": []}, "request needs 'inputs': a non-empty list of tensors"),
        (
            {"inputs": [{"shape": [1, 64], "datatype": "FP32", "data": [0]}]},
            "inputs[0] needs a 'name'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FLOAT", "data": [0]}]},
            "tensor 'x' has datatype 'FLOAT'; expected one of",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, -64], "datatype": "FP32", "data": [0]}]},
            "tensor 'x' needs a shape: a list of non-negative integers",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32"}]},
            "input 'x' has neither 'data' nor parameters.binary_data_size",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 64],
                        "datatype": "FP32",
                        "parameters": {"binary_data_size": 256},
                    }
                ]
            },
            "input 'x' has binary_data_size but the request has no Inference-Header-Content-Length header",
        ),
        (
            json_request(id=5),
            "'id' must be a string",
        ),
        (json_request(outputs={"name": "logits"}), "'outputs' must be a list"),
        (
            {"inputs": [json_request()["inputs"][0]] * 2},
            "input 'x' is given twice",
        ),
        (  # [] was read as no parameters, where [1] was a 400
            {"inputs": [{**json_request()["inputs"][0], "parameters": []}]},
            "input 'x' parameters must be a JSON object",
        ),
        (
            json_request(outputs=[{"name": "logits", "parameters": []}]),
            "output 'logits' parameters must be a JSON object",
        ),
        (  # was "datatype None; expected one of ..."
            {"inputs": [{"name": "x", "shape": [1, 64], "data": [0.0] * 64}]},
            "tensor 'x' has no 'datatype'; give one of ['BOOL', ",
        ),
        (  # tritonclient's set_shared_memory: said only "neither 'data' nor ..."
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 64],
                        "datatype": "FP32",
                        "parameters": {
                            "shared_memory_region": "r0",
                            "shared_memory_byte_size": 256,
                        },
                    }
                ]
            },
            "input 'x' names a shared_memory_region: this server does not offer the shared-memory",
        ),
        (  # was ignored: answered in the body, the caller's region never written
            json_request(
                outputs=[{"name": "logits", "parameters": {"shared_memory_region": "r1"}}]
            ),
            "output 'logits' names a shared_memory_region: this server does not offer",
        ),
    ],
    ids=[
        "syntax",
        "array",
        "no-inputs",
        "no-name",
        "datatype",
        "shape",
        "no-data",
        "binary-without-header",
        "id",
        "outputs",
        "twice",
        "input-parameters-list",
        "output-parameters-list",
        "no-datatype",
        "input-shared-memory",
        "output-shared-memory",
    ],
)
def test_malformed_infer_is_400(service: PredictService, doc: Any, message: str) -> None:
    status, body = call(service, "POST", INFER, doc)
    assert status == 400
    assert body["error"].startswith(message), body


def test_nan_in_json_data_says_why_it_is_refused(service: PredictService) -> None:
    tensor = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 63 + [1e400]}
    status, body = call(service, "POST", INFER, {"inputs": [tensor]})  # json.dumps: Infinity
    assert status == 400
    assert "(NaN and Infinity are not JSON: send null for a missing value" in body["error"]


@pytest.mark.parametrize(
    ("header_length", "payload", "message"),
    [
        ("abc", b"", "Inference-Header-Content-Length must be a non-negative integer"),
        ("99999", b"", "Inference-Header-Content-Length is 99999 but the body has only"),
        (None, b"\0" * 256, "input 'x' claims 512 bytes of binary data; only 256 remain"),
        (None, b"\0" * 516, "4 bytes of binary data follow the last tensor"),
    ],
    ids=["not-int", "longer-than-body", "short", "trailing"],
)
def test_malformed_binary_is_400(
    service: PredictService, header_length: str | None, payload: bytes, message: str
) -> None:
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
    event = binary_event(header, payload)
    if header_length is not None:
        event["headers"]["inference-header-content-length"] = header_length
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response)["error"].startswith(message), response["body"]


def test_header_length_off_by_some_bytes_says_so(service: PredictService) -> None:
    header = {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0] * 64}]}
    event = binary_event(header, b"", header_length=10)
    response = service.handle(event)
    assert response["statusCode"] == 400
    assert body_of(response)["error"].endswith(
        "(the JSON header is the body's first 10 bytes, as Inference-Header-Content-Length "
        "says: it must be the JSON's exact length)"
    ), response["body"]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {"shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63},
            "input 'x' expects shape [-1, 64]; got [1, 63] (dimension 1 must be 64)",
        ),
        (
            {"shape": [1, 64], "datatype": "FP64", "data": [0.0] * 64},
            "input 'x' expects FP32 (float32); got FP64 (float64), which does not convert safely: send FP32 "
            "(numpy .astype('float32'))",
        ),
        (
            {"shape": [1, 64], "datatype": "INT32", "data": [0] * 64},
            "input 'x' expects FP32 (float32); got INT32 (int32), which does not convert safely: send FP32 "
            "(numpy .astype('float32'))",
        ),
        (
            {"shape": [1, 64], "datatype": "FP32", "data": [0.0] * 10},
            "tensor 'x' has 10 elements; shape [1, 64] needs 64",
        ),
        (
            {"shape": [1, 64], "datatype": "FP32", "data": ["a"] * 64},
            "tensor 'x' is FP32: data must be numbers",
        ),
        (
            {"shape": [1, 64], "datatype": "INT8", "data": [1000] * 64},
            "tensor 'x' has values out of range for INT8: [-128, 127]",
        ),
        (
            {"shape": [1 << 20, 1 << 20], "datatype": "FP32", "data": [0.0]},
            "tensor 'x' declares shape [1048576, 1048576]: over 67108864 elements",
        ),
        (  # numpy reads a true among numbers as 1.0: it was served as one
            {"shape": [1, 64], "datatype": "FP32", "data": [[0.0] * 63 + [True]]},
            "tensor 'x' is FP32: data must be numbers, not true/false",
        ),
        (  # was "has 1 elements": null was wrapped as [null] and counted
            {"shape": [1, 64], "datatype": "FP32", "data": None},
            "tensor 'x' has 'data': null; send its values as a list",
        ),
    ],
    ids=["shape", "fp64", "int32", "count", "text", "range", "huge", "bool-among-numbers", "null"],
)
def test_shape_or_dtype_mismatch_is_422(
    service: PredictService, tensor: dict[str, Any], message: str
) -> None:
    status, body = call(service, "POST", INFER, {"inputs": [{"name": "x", **tensor}]})
    assert (status, body) == (422, {"error": message})


def test_binary_size_that_does_not_fit_the_shape_is_422(service: PredictService) -> None:
    header = {
        "inputs": [
            {
                "name": "x",
                "shape": [2, 64],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 500},
            }
        ]
    }
    response = service.handle(binary_event(header, b"\0" * 500))
    assert response["statusCode"] == 422
    assert body_of(response) == {
        "error": "tensor 'x' has 500 bytes of data; shape [2, 64] of FP32 needs 512"
    }


def test_unknown_input_and_output_are_422(service: PredictService) -> None:
    doc = json_request()
    doc["inputs"].append({"name": "extra", "shape": [1], "datatype": "FP32", "data": [1.0]})
    assert call(service, "POST", INFER, doc) == (
        422,
        {  # more inputs than the model has: refused as the request is read, saying so
            "error": "unknown input 'extra'; this model takes x: float32 [-1, 64] (the "
            "request names 2 inputs, more than its 1)"
        },
    )
    assert call(service, "POST", INFER, json_request(outputs=[{"name": "probs"}])) == (
        422,
        {"error": "unknown output 'probs'; this model has outputs ['logits']"},
    )


@pytest.mark.parametrize(
    "path",
    [
        f"/v2/models/{MODEL}/versions/9",
        f"/v2/models/{MODEL}/versions/9/ready",
    ],
)
def test_unknown_version_is_404(service: PredictService, path: str) -> None:
    assert call(service, "GET", path) == (
        404,
        {"error": f"version '9' of model '{MODEL}' not found"},
    )


def test_unknown_version_infer_is_404(service: PredictService) -> None:
    assert call(service, "POST", f"/v2/models/{MODEL}/versions/9/infer", json_request()) == (
        404,
        {"error": f"version '9' of model '{MODEL}' not found"},
    )


@pytest.mark.parametrize(
    "path", ["/v2/models/iris", "/v2/models/iris/ready", "/v2/models/iris/infer"]
)
def test_model_not_served_here_is_404(service: PredictService, path: str) -> None:
    method = "POST" if path.endswith("infer") else "GET"
    assert call(service, method, path, json_request() if method == "POST" else None) == (
        404,
        {"error": f"model 'iris' is not served here; this endpoint serves '{MODEL}'"},
    )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (f"/v2/models/{MODEL}/versions/..", "invalid version '..'"),
        (f"/v2/models/{MODEL}/versions/..%2F..%2Fetc", "invalid version '..%2F..%2Fetc'"),
        (f"/v2/models/{MODEL}/versions/.hidden/ready", "invalid version '.hidden'"),
        ("/v2/models/../versions/1", "invalid model name '..'"),
        ("/v2/models/%2e%2e/ready", "invalid model name '%2e%2e'"),
        ("/v2/models/Digits", "invalid model name 'Digits'"),
    ],
)
def test_path_traversal_names_are_400_never_5xx(
    service: PredictService, path: str, message: str
) -> None:
    status, body = call(service, "GET", path)
    assert status == 400
    assert body["error"].startswith(message), body


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", INFER, "POST"),
        ("PUT", f"/models/{MODEL}/predict", "POST"),
        ("POST", f"/v2/models/{MODEL}", "GET"),
        ("DELETE", f"/v2/models/{MODEL}/versions/1", "GET"),
        ("POST", "/v2/health/live", "GET"),
    ],
)
def test_wrong_method_is_405(service: PredictService, method: str, path: str, allowed: str) -> None:
    assert call(service, method, path) == (
        405,
        {"error": f"{method} is not allowed on {path}; use {allowed}"},
    )


def test_unknown_route_is_404(service: PredictService) -> None:
    assert call(service, "GET", "/v3/anything") == (404, {"error": "no route for GET /v3/anything"})
