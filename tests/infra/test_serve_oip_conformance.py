"""Open Inference Protocol v2 conformance over a real `aiaas serve`, with raw HTTP (httpx) and
tritonclient unchanged: requested outputs, the binary extension's flags, compressed bodies.

Spec: kserve/open-inference-protocol `inference_rest.md`; Triton's binary tensor data
extension. What aiaas does on purpose otherwise is in docs/oip.md.
"""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton  # a dev dependency: a missing client fails, never skips

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
A, B = X + 1, X * 2  # the model's outputs `a` and `b`


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("oip")
    registry = Registry(LocalStore(root / "store"))
    path = onnx_factory.two_outputs(root / "two.onnx")
    registry.publish(onnx_factory.manifest_for(path, "two", "1"), path)
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(root / f"cls-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "cls", version), path)
    registry.set_alias("cls", "production", "2")
    path = onnx_factory.linear_classifier(root / "wide.onnx", features=4, classes=200)
    registry.publish(onnx_factory.manifest_for(path, "wide", "1"), path)
    yield from start_serve(root / "store")


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


@pytest.fixture
def tc(server: ServeProcess) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    yield client
    client.close()


def infer_body(**fields: Any) -> dict[str, Any]:
    tensor = {"name": "x", "datatype": "FP32", "shape": [2, 3], "data": X.tolist()}
    return {"inputs": [tensor], **fields}


def split(answer: httpx.Response) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON header of an infer answer and each output as numpy, JSON or binary."""
    length = answer.headers.get("inference-header-content-length")
    head = json.loads(answer.content[: int(length)] if length else answer.content)
    blob, arrays = answer.content[int(length) if length else len(answer.content) :], {}
    for item in head["outputs"]:
        size = (item.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[item["name"]] = np.array(item["data"], np.float32).reshape(item["shape"])
        else:
            arrays[item["name"]] = np.frombuffer(blob[:size], "<f4").reshape(item["shape"])
            blob = blob[size:]
    assert blob == b"", "bytes after the last binary output"
    return head, arrays


# ---- inference request and response fields (inference_rest.md) -----------------------------


def test_id_and_parameters_on_a_version_route(client: httpx.Client) -> None:
    body = {
        "id": "req-42",
        "parameters": {"custom": "kept", "n": 3, "flag": True},  # server-specific: accepted
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}],
    }
    answer = client.post("/v2/models/cls/versions/1/infer", json=body)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["id"], doc["model_name"], doc["model_version"]) == ("req-42", "cls", "1")
    assert client.post("/v2/models/cls/infer", json=body).json()["model_version"] == "2"


def test_requested_outputs_come_as_a_subset_in_the_order_asked(client: httpx.Client) -> None:
    only_b = client.post("/v2/models/two/infer", json=infer_body(outputs=[{"name": "b"}]))
    head, arrays = split(only_b)
    assert [o["name"] for o in head["outputs"]] == ["b"]
    np.testing.assert_array_equal(arrays["b"], B)
    both = client.post(
        "/v2/models/two/infer", json=infer_body(outputs=[{"name": "b"}, {"name": "a"}])
    )
    assert [o["name"] for o in both.json()["outputs"]] == ["b", "a"]


def test_an_output_requested_twice_is_a_400(client: httpx.Client) -> None:
    # Which of its two settings (binary or JSON) would hold? Triton refuses it too.
    outputs = [{"name": "a"}, {"name": "a", "parameters": {"binary_data": True}}]
    answer = client.post("/v2/models/two/infer", json=infer_body(outputs=outputs))
    assert answer.status_code == 400
    assert answer.json() == {"error": "output 'a' is requested twice"}


def test_nested_and_flat_data_are_the_same_tensor(client: httpx.Client) -> None:
    flat = infer_body()
    flat["inputs"][0]["data"] = X.reshape(-1).tolist()
    answers = [client.post("/v2/models/two/infer", json=b).json() for b in (infer_body(), flat)]
    assert answers[0] == answers[1]
    assert answers[0]["outputs"][0]["data"] == A.reshape(-1).tolist()  # row-major, flattened


# ---- binary tensor data extension ----------------------------------------------------------


def test_binary_data_output_with_a_per_output_override(client: httpx.Client) -> None:
    body = infer_body(
        parameters={"binary_data_output": True},
        outputs=[{"name": "a"}, {"name": "b", "parameters": {"binary_data": False}}],
    )
    answer = client.post("/v2/models/two/infer", json=body)
    assert answer.headers["content-type"] == "application/octet-stream"
    head, arrays = split(answer)
    assert head["outputs"][0]["parameters"] == {"binary_data_size": A.nbytes}
    assert "data" in head["outputs"][1] and "parameters" not in head["outputs"][1]
    np.testing.assert_array_equal(arrays["a"], A)
    np.testing.assert_array_equal(arrays["b"], B)


def test_an_empty_outputs_list_is_every_output_and_binary_data_output_holds(
    client: httpx.Client,
) -> None:
    answer = client.post(
        "/v2/models/two/infer", json=infer_body(outputs=[], parameters={"binary_data_output": True})
    )
    head, arrays = split(answer)
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [24, 24]
    np.testing.assert_array_equal(arrays["b"], B)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"parameters": {"binary_data_output": "true"}},
            "request parameter 'binary_data_output' must be true or false; got 'true'",
        ),
        (
            {"outputs": [{"name": "a", "parameters": {"binary_data": 1}}]},
            "output 'a' parameter 'binary_data' must be true or false; got 1",
        ),
    ],
    ids=["binary_data_output", "binary_data"],
)
def test_binary_flags_that_are_not_booleans_are_a_400(
    client: httpx.Client, fields: dict[str, Any], error: str
) -> None:
    # Ignored, the answer would come in a format the caller did not ask for.
    answer = client.post("/v2/models/two/infer", json=infer_body(**fields))
    assert answer.status_code == 400
    assert answer.json() == {"error": error}


def test_an_input_with_both_data_and_binary_data_size_is_a_400(client: httpx.Client) -> None:
    # Two values for one tensor: the binary ones were taken and `data` silently dropped.
    tensor = {"name": "x", "datatype": "FP32", "shape": [2, 3], "data": X.tolist()}
    tensor["parameters"] = {"binary_data_size": X.nbytes}
    head = json.dumps({"inputs": [tensor]}).encode()
    answer = client.post(
        "/v2/models/two/infer",
        content=head + (X * 9).tobytes(),
        headers={"inference-header-content-length": str(len(head))},
    )
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": "input 'x' has both 'data' and parameters.binary_data_size: send one of them"},
    )


@pytest.mark.parametrize("binary", [True, False], ids=["bin-in", "json-in"])
def test_a_huge_dimension_after_a_zero_is_a_422(
    client: httpx.Client, server: ServeProcess, binary: bool
) -> None:
    # [0, 2**62] has no elements, so the element bound passed it; numpy's reshape then raised
    # ("array is too big"): a 500.
    tensor: dict[str, Any] = {"name": "x", "datatype": "FP32", "shape": [0, 2**62]}
    if binary:
        tensor["parameters"] = {"binary_data_size": 0}
    else:
        tensor["data"] = []
    head = json.dumps({"inputs": [tensor]}).encode()
    headers = {"inference-header-content-length": str(len(head))} if binary else {}
    answer = client.post("/v2/models/two/infer", content=head, headers=headers)
    error = f"tensor 'x' declares shape [0, {2**62}]: dimension 1 is over 67108864"
    assert (answer.status_code, answer.json()) == (422, {"error": error})
    assert "unhandled error" not in server.output()


def test_an_answer_over_lambdas_response_limit_is_a_413_that_says_what_to_send(
    client: httpx.Client,
) -> None:
    # 340 KB of JSON in, 9 MB of JSON logits out: `aiaas serve` answered 200 where Lambda fails
    # the invoke (its 6 MB response limit) and API Gateway answers a bare 502.
    x = np.linspace(-1, 1, 4096 * 4, dtype=np.float32).reshape(4096, 4)
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [4096, 4], "data": x.tolist()}]}
    answer = client.post("/v2/models/wide/infer", json=body)
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error.startswith("the answer to this request is 90") and error.endswith(
        " bytes, over the 6291456 byte limit of a response (AWS Lambda's): ask for less in one "
        "request: fewer rows or fewer outputs (OIP binary outputs take about half the bytes "
        "of JSON numbers)"
    ), error
    simple = client.post("/models/wide/predict", json={"inputs": x.tolist()})
    assert simple.status_code == 413, simple.text
    # As the message says: the same rows with binary outputs fit (3.3 MB, 4.4 MB in base64).
    body["parameters"] = {"binary_data_output": True}
    _, arrays = split(client.post("/v2/models/wide/infer", json=body))
    assert arrays["logits"].shape == (4096, 200)


# ---- compressed request bodies (tritonclient's request_compression_algorithm) ---------------


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
@pytest.mark.parametrize("binary", [True, False], ids=["bin-in", "json-in"])
def test_tritonclient_compressed_requests(
    tc: triton.InferenceServerClient, algorithm: str, binary: bool
) -> None:
    tensor = triton.InferInput("x", [2, 3], "FP32")
    tensor.set_data_from_numpy(X, binary_data=binary)
    result = tc.infer(
        "two",
        [tensor],
        request_id="z-1",
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,  # answered uncompressed: HTTP allows it
    )
    np.testing.assert_array_equal(result.as_numpy("a"), A)
    np.testing.assert_array_equal(result.as_numpy("b"), B)
    assert result.get_response()["id"] == "z-1"


def test_a_gzip_body_is_every_member_and_nothing_after(client: httpx.Client) -> None:
    """Only the first gzip member was inflated and the rest dropped unsaid (api hunt): a body
    of two members (as zcat reads them) was a 400 for half its JSON, and a gzip body followed
    by junk a 200."""
    raw = json.dumps(infer_body()).encode()
    headers = {"content-encoding": "gzip"}
    plain = client.post("/v2/models/two/infer", content=raw)
    split = gzip.compress(raw[:40]) + gzip.compress(raw[40:])
    answer = client.post("/v2/models/two/infer", content=split, headers=headers)
    assert (answer.status_code, answer.json()) == (200, plain.json())
    padded = client.post(
        "/v2/models/two/infer", content=gzip.compress(raw) + bytes(8), headers=headers
    )
    assert padded.status_code == 200  # zeros after it, as gzip's own tools pad
    junk = client.post(
        "/v2/models/two/infer", content=gzip.compress(raw) + b"junk", headers=headers
    )
    assert (junk.status_code, junk.json()) == (
        400,
        {"error": "request body has 4 bytes after its gzip data"},
    )


def test_compressed_bodies_that_are_wrong(client: httpx.Client, server: ServeProcess) -> None:
    raw = json.dumps(infer_body()).encode()
    cases = [
        (
            {"content-encoding": "br"},
            raw,
            415,
            "Content-Encoding 'br' is not supported: send the body as it is, or gzip or deflate it",
        ),
        (
            {"content-encoding": "gzip"},
            raw,
            400,
            "request body says Content-Encoding gzip but is not",
        ),
        (
            {"content-encoding": "gzip"},
            gzip.compress(raw)[:-12],
            400,
            "request body (gzip) is cut short",
        ),
        (
            {"content-encoding": "deflate"},
            zlib.compress(b" " * 7_000_000),
            413,
            "request body is over the 6291456 byte limit once inflated",
        ),
    ]
    for headers, body, status, error in cases:
        answer = client.post("/v2/models/two/infer", content=body, headers=headers)
        assert (answer.status_code, answer.json()) == (status, {"error": error}), headers
    assert "Traceback" not in server.output()


# ---- gRPC: not served (docs/oip.md, "gRPC is not served") -----------------------------------

# What a gRPC client sends first on a cleartext connection: HTTP/2's preface and SETTINGS frame.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")


def test_a_grpc_clients_http2_connection_is_closed_and_http_goes_on(
    server: ServeProcess, client: httpx.Client
) -> None:
    """docs/oip.md tells a `tritonclient.grpc` user what they see: the connection closed with
    no answer (no HTTP/1.1 error they might parse as an answer), the server serving on."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as grpc_like:
        grpc_like.sendall(HTTP2_PREFACE)
        try:
            received = grpc_like.recv(4096)
        except ConnectionResetError:  # closed with bytes of ours unread: a reset, not a FIN
            received = b""
        assert received == b"", received  # closed, nothing written
    answer = client.post("/v2/models/two/infer", json=infer_body())
    assert answer.status_code == 200
    np.testing.assert_array_equal(split(answer)[1]["a"], A)
