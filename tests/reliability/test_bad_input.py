"""Every row of the bad-input table against a real `aiaas serve`: a 4xx that says what to fix.

Requests go byte for byte over loopback (http.client: no path normalisation, no body
re-encoding), through the gateway into the real predict and control-plane functions. Zero
5xx; after the whole table the server still answers, and its log holds no traceback.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.reliability.bad_requests import CASES, CONTROL, OIP_BINARY, OIP_JSON, ROW, SIMPLE, Bad

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("bad-input")
    store, _ = publish_digits(root)
    yield from start_serve(store, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH)


def send(
    server: ServeProcess, method: str, path: str, body: bytes, headers: Mapping[str, str]
) -> tuple[int, str, bytes]:
    """(status, content type, body) of one request sent exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={**AUTH, **headers})
        answer = connection.getresponse()
        return answer.status, answer.getheader("content-type") or "", answer.read()
    finally:
        connection.close()


def test_the_table_covers_every_class_of_bad_input() -> None:
    assert len(CASES) >= 50
    assert min(len(SIMPLE), len(OIP_JSON), len(OIP_BINARY), len(CONTROL)) >= 10
    assert all(400 <= case.status < 500 and case.error for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_request_is_a_4xx_that_says_what_to_fix(server: ServeProcess, case: Bad) -> None:
    status, content_type, raw = send(server, case.method, case.path, case.body, case.headers)
    assert content_type == "application/json", raw[:300]
    body = json.loads(raw)
    assert (status, list(body)) == (case.status, ["error"]), body
    assert body["error"].startswith(case.error), body["error"]
    assert "Traceback" not in body["error"] and "/work/" not in body["error"]


def raw_exchange(server: ServeProcess, data: bytes, half_close: bool = False) -> bytes:
    """Bytes the server sends back for `data` before it closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"POST /models/x/predict HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /models/x/predict HTTP/1.1\r\nHost: h\r\nContent-Length: 12abc\r\n\r\n", 400),
        # hyper's read buffer is 64 KiB; a head arriving in one read may overfill it up to ~2x.
        (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n", 431),
        (
            f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer ".encode()
            + TOKEN.encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
    ],
    ids=["negative-length", "non-numeric-length", "header-over-the-buffer", "bad-chunk-size"],
)
def test_malformed_http_framing_is_4xx_and_closed(
    server: ServeProcess, head: bytes, status: int
) -> None:
    """Framing is granian's job: a bad head is answered before any route runs (so with no JSON
    body); a bad chunk ends the body, which the function then refuses. Either way the server
    closes the connection: `raw_exchange` reads until it does."""
    reply = raw_exchange(server, head)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:200]


def test_a_body_cut_short_by_the_client_is_400_and_harms_nothing(server: ServeProcess) -> None:
    body = json.dumps({"inputs": [ROW]}).encode()
    head = (
        f"POST /models/{MODEL}/predict HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    reply = raw_exchange(server, head + body[:20], half_close=True)
    assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    assert reply.endswith(b'{"error":"the request body ended before its declared length"}')


def test_the_server_still_answers_after_the_table(server: ServeProcess) -> None:
    """Runs last in this module: the bad requests above left nothing broken behind them."""
    status, _, raw = send(server, "GET", "/v2/health/ready", b"", {})
    assert (status, json.loads(raw)) == (200, {"ready": True})
    status, _, raw = send(
        server, "POST", f"/models/{MODEL}/predict", json.dumps({"inputs": [ROW]}).encode(), {}
    )
    assert status == 200 and json.loads(raw)["model"] == MODEL
    status, _, raw = send(server, "GET", f"/control/models/{MODEL}", b"", {})
    assert (status, json.loads(raw)["versions"]) == (200, ["1"])
    log = Path(server.log).read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-2000:]
