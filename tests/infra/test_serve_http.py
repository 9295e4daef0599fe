"""`aiaas serve` over real HTTP: 4xx bodies, token, both payload limits, HTTP/1.1 behaviour."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, raw_get, start_serve

SERVED = ", ".join(sorted(["broken", MODEL]))  # the models this module's server serves


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("serve-http")
    store, _ = publish_digits(root)
    # `broken`: its file in the store no longer matches the sha256 its manifest vouches for.
    path = onnx_factory.linear_classifier(root / "broken.onnx", features=4, classes=2)
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(path, "broken", "1"), path)
    (store / "models" / "broken" / "versions" / "1" / "model.onnx").write_bytes(b"tampered")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    yield from start_serve(root / "store", env={"AIAAS_API_TOKEN": TOKEN}, headers=auth)


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client


# ---- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"/v2/models/{MODEL}/versions/7", None),
        (f"/v2/models/{MODEL}/versions/7/ready", None),
        (
            f"/v2/models/{MODEL}/versions/7/infer",
            {"inputs": [{"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]},
        ),
    ],
)
def test_unknown_version_is_404(client: httpx.Client, path: str, body: Any) -> None:
    answer = client.post(path, json=body) if body else client.get(path)
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": f"version '7' of model '{MODEL}' not found"},
    )


def test_unknown_model_is_404(client: httpx.Client) -> None:
    answer = client.post("/models/no-such-model/predict", json={"inputs": [[1.0]]})
    assert (answer.status_code, answer.json()) == (
        404,
        {
            "error": "no route for POST /models/no-such-model/predict; "
            f"no model 'no-such-model' is served here (models: {SERVED})"
        },
    )


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (f"/v2/models/{MODEL}/versions/..", 400, "invalid version '..'"),
        (f"/v2/models/{MODEL}/versions/../ready", 400, "invalid version '..'"),
        # routed on the path decoded once, as API Gateway routes it: an encoded slash separates
        # segments (infra/local/paths.py)
        (
            f"/v2/models/{MODEL}/versions/..%2F..%2Fmanifest.json",
            404,
            f"no route for GET /v2/models/{MODEL}/versions/../../manifest.json",
        ),
        (f"/v2/models/{MODEL}/versions/%2e%2e", 400, "invalid version '..'"),
        ("/v2/models/../versions/1", 404, "no route for GET /v2/models/../versions/1"),
        (
            f"/v2/models/{MODEL}/../../etc/passwd",
            404,
            f"no route for GET /v2/models/{MODEL}/../../etc/passwd",
        ),
    ],
)
def test_path_traversal_is_4xx_never_5xx(
    server: ServeProcess, path: str, status: int, message: str
) -> None:
    got, body = raw_get(server, path)
    assert got == status
    assert body["error"].startswith(message), body


def test_malformed_body_is_400(client: httpx.Client) -> None:
    answer = client.post(
        f"/models/{MODEL}/predict", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("request body is not valid JSON")


def test_shape_mismatch_is_422_naming_the_input(client: httpx.Client) -> None:
    answer = client.post(f"/models/{MODEL}/predict", json={"inputs": [[1.0] * 60]})
    assert (answer.status_code, answer.json()) == (
        422,
        {"error": "input 'x' expects shape [-1, 64]; got [1, 60] (dimension 1 must be 64)"},
    )


def test_wrong_method_is_404_as_on_api_gateway(client: httpx.Client) -> None:
    # HTTP APIs have no 405: a method without a route is "no route" (the function's own 405
    # answers direct invocations; see tests/functions/test_predict_v2.py).
    answer = client.get(f"/models/{MODEL}/predict")
    assert (answer.status_code, answer.json()) == (
        404,
        {"error": f"no route for GET /models/{MODEL}/predict; this path takes POST"},
    )
    answer = client.put(f"/v2/models/{MODEL}/versions/1/ready")
    assert answer.status_code == 404


def test_over_the_function_payload_limit_is_413(client: httpx.Client) -> None:
    body = b"\0" * (6 * 1024 * 1024 + 16)
    answer = client.post(
        f"/v2/models/{MODEL}/infer",
        content=body,
        headers={"content-type": "application/octet-stream"},
    )
    assert (answer.status_code, answer.json()) == (
        413,
        {"error": "request body is over the 6291456 byte limit"},
    )


def test_over_the_gateway_limit_is_413_and_closes(server: ServeProcess) -> None:
    body = b"x" * (10 * 1024 * 1024 + 1)
    with httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as client:
        answer = client.post(f"/models/{MODEL}/predict", content=body)
    assert (answer.status_code, answer.json()) == (
        413,
        {"error": "request body is over the 10485760 byte limit"},
    )
    assert answer.headers["connection"] == "close"


@pytest.mark.parametrize("authorization", [None, "Bearer nope", f"Basic {TOKEN}"])
def test_missing_or_wrong_token_is_401(server: ServeProcess, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in [
        ("POST", f"/models/{MODEL}/predict"),
        ("GET", "/v2/health/live"),
        ("GET", "/nowhere"),
    ]:
        answer = httpx.request(
            method, server.base + path, headers=headers, json={"inputs": [[0.0] * 64]}
        )
        assert (answer.status_code, answer.json()) == (
            401,
            {"error": "missing or invalid bearer token"},
        ), path
        assert answer.headers["www-authenticate"] == "Bearer"


def test_malformed_http_is_400_and_closed(server: ServeProcess) -> None:
    """Framing is the HTTP server's (granian's) job: its 400 has no JSON body, as no route ran."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        reply = sock.recv(4096)
        assert sock.recv(4096) == b""
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in reply.lower()


def test_expect_100_continue_is_answered(server: ServeProcess) -> None:
    """curl sends `Expect: 100-continue` before a body over 1 MB and waits for the go-ahead."""
    body = json.dumps({"inputs": [[1.0] * 64]}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\n\r\n".encode()
        )
        sock.settimeout(0.5)
        interim = sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.settimeout(10)
        sock.sendall(body)
        reply = b""
        while b"predictions" not in reply:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK")


def test_keep_alive_answers_many_requests_on_one_connection(server: ServeProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for _ in range(20):
            connection.request(
                "GET", "/v2/health/live", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            answer = connection.getresponse()
            assert (answer.status, json.loads(answer.read())) == (200, {"live": True})
    finally:
        connection.close()


def pipelined(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
    return (
        f"{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def read_bodies(sock: socket.socket, count: int) -> list[bytes]:
    """`count` HTTP/1.1 responses off one connection, in the order they arrive."""
    buffer, bodies = b"", list[bytes]()
    while len(bodies) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(1 << 20)
            assert chunk, f"connection closed after {len(bodies)} responses"
            buffer += chunk
        head, buffer = buffer.split(b"\r\n\r\n", 1)
        length = int(
            next(
                v
                for k, _, v in (line.partition(b":") for line in head.split(b"\r\n"))
                if k.lower() == b"content-length"
            )
        )
        while len(buffer) < length:
            buffer += sock.recv(1 << 20)
        bodies.append(buffer[:length])
        buffer = buffer[length:]
    return bodies


def test_pipelined_requests_are_answered_in_order(server: ServeProcess) -> None:
    """A slow request (run off the event loop) must not be overtaken by a fast one behind it."""
    big = json.dumps({"inputs": [[1.0] * 64] * 4000}).encode()  # several ms: the slow path
    slow = pipelined("POST", f"/models/{MODEL}/predict", big)
    fast = pipelined("GET", "/v2/health/live")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for _ in range(4):  # the gateway learns the route is slow from its recent calls
            sock.sendall(slow)
            read_bodies(sock, 1)
        sock.sendall(slow + fast + fast + slow + fast)
        bodies = read_bodies(sock, 5)
    kinds = ["live" if b'"live"' in body else "predict" for body in bodies]
    assert kinds == ["predict", "live", "live", "predict", "live"]


def test_model_that_cannot_load_is_503_without_internals(client: httpx.Client) -> None:
    answer = client.post("/models/broken/predict", json={"inputs": [[1.0, 2.0, 3.0, 4.0]]})
    assert (answer.status_code, answer.json()) == (
        503,
        {
            "error": "model broken:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
        },
    )
    ready = client.get("/v2/models/broken/ready")
    assert (ready.status_code, ready.json()["ready"]) == (503, False)
    for text in (answer.text, ready.text):
        assert "/tmp" not in text and "sha256" not in text and "Traceback" not in text
    # The other model in the same server is unaffected.
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200


def test_changes_through_a_token_protected_serve_name_the_token_holder(
    client: httpx.Client,
) -> None:
    answer = client.put(f"/control/models/{MODEL}/aliases/staging", json={"version": "1"})
    assert answer.status_code == 201, answer.text  # created
    assert answer.json()["updated_by"] == "bearer-token-holder@127.0.0.1"


def test_two_clients_promoting_from_one_view_one_is_told_it_lost(server: ServeProcess) -> None:
    """Two scripts read the alias and PUT their version with its ETag at once, over real HTTP
    on separate connections: one gets a 200, the other a 412 saying where the alias is now.
    They move it to a version it is not at: a PUT of what it already holds writes nothing (no
    new ETag), so two of those both succeed, as repeating a PUT should."""
    first = server.store / "models" / MODEL / "versions" / "1" / "model.onnx"
    Registry(LocalStore(server.store)).publish(onnx_factory.manifest_for(first, MODEL, "2"), first)
    path = f"/control/models/{MODEL}/aliases/race"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    created = httpx.put(server.base + path, headers=headers, json={"version": "1"})
    assert created.status_code == 201, created.text
    clients = [httpx.Client(base_url=server.base, headers=headers, timeout=30) for _ in "ab"]
    etag = created.headers["etag"]
    assert httpx.get(server.base + path, headers=headers).headers["etag"] == etag
    with clients[0], clients[1], ThreadPoolExecutor(2) as pool:
        sent = [
            pool.submit(c.put, path, json={"version": "2"}, headers={"If-Match": etag})
            for c in clients
        ]
        answers = [future.result() for future in sent]
    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 412).json()["error"]
    assert "changed since you read it: it now points at version '2'" in lost
    refused = httpx.patch(server.base + path, headers=headers)
    assert (refused.status_code, refused.headers["allow"]) == (405, "DELETE, GET, HEAD, PUT")
