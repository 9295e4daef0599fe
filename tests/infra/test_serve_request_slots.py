"""`--max-in-flight` counts requests, not connections, against the real `aiaas serve`.

granian's own limit (`backpressure`), which it was, counts every accepted connection until it
closes: `max_in_flight` + 1 idle TCP connections (no token, no byte sent), or unauthenticated
heads declaring a body that never came, held every slot, and every other client and the
health probes waited for the header (10 s) or body (30 s) timeout to close them. Now the
server holds thousands of connections (infra/local/connection_limit.py) and the app counts the
requests admitted past the token (infra/local/app.py): one more that would wait is a 503 with
Retry-After, and a refused head's body is drained for at most DRAIN_S.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.local.app import DRAIN_S
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve

LIMIT = 4
HEADER_TIMEOUT = 5.0
BODY_TIMEOUT = 10.0
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = [0.5] * 64
PREDICT = f"/models/{MODEL}/predict"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slots")
    publish_digits(root)
    return root / "store"


@pytest.fixture(scope="module", params=[1, 2], ids=["workers1", "workers2"])
def server(store: Path, request: pytest.FixtureRequest) -> Iterator[ServeProcess]:
    yield from start_serve(
        store,
        "--max-in-flight", str(LIMIT), "--workers", str(request.param),
        "--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", str(BODY_TIMEOUT),
        env={"AIAAS_API_TOKEN": TOKEN},
        headers=AUTH,
    )  # fmt: skip


def warm(server: ServeProcess) -> None:
    """Each route's first call in each worker (a thread: it may be a cold start), then its
    cheap calls run inline. Fresh connections: the kernel spreads them over the workers."""
    for _ in range(12):
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as http:
            assert http.post(PREDICT, json={"inputs": [ROW]}).status_code == 200
            assert http.get("/v2/health/live").status_code == 200


def timed(method: str, server: ServeProcess, path: str, **kwargs: object) -> tuple[int, float]:
    """(status, seconds) of one request on a fresh connection."""
    began = time.monotonic()
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as http:
        answer = http.request(method, path, **kwargs)  # type: ignore[arg-type]
    return answer.status_code, time.monotonic() - began


def head(port: int, auth: bool) -> socket.socket:
    """A predict head declaring 5,000 bytes of body, of which one is sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    token = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    sock.sendall(
        f"POST {PREDICT} HTTP/1.1\r\nHost: h\r\n{token}Content-Type: application/json\r\n"
        "Content-Length: 5000\r\n\r\n{".encode()
    )
    return sock


def test_idle_connections_and_bodies_that_never_come_leave_requests_and_probes_answered(
    server: ServeProcess,
) -> None:
    warm(server)
    with contextlib.ExitStack() as held:
        # Three times the limit of each worker in idle connections, no byte sent.
        for _ in range(3 * LIMIT * 2):
            held.enter_context(socket.create_connection(("127.0.0.1", server.port)))
        # Unauthenticated heads whose body never comes, and authenticated ones under the limit.
        for _ in range(2 * LIMIT):
            held.enter_context(head(server.port, auth=False))
        for _ in range(LIMIT // 2):
            held.enter_context(head(server.port, auth=True))
        time.sleep(0.3)
        for _ in range(3):
            for method, path in (("POST", PREDICT), ("GET", "/v2/health/live")):
                body = {"json": {"inputs": [ROW]}} if method == "POST" else {}
                status, seconds = timed(method, server, path, **body)
                assert status == 200 and seconds < 1.0, f"{path}: {status} after {seconds:.2f} s"


def test_over_the_limit_a_request_is_a_503_to_retry_and_a_probe_still_answered(
    server: ServeProcess, request: pytest.FixtureRequest
) -> None:
    if request.node.callspec.params["server"] > 1:
        pytest.skip("which worker a connection reaches is the kernel's choice")
    warm(server)
    with contextlib.ExitStack() as held:
        for _ in range(LIMIT):  # each holds a slot while its body does not come
            held.enter_context(head(server.port, auth=True))
        time.sleep(0.3)
        began = time.monotonic()
        with httpx.Client(base_url=server.base, headers=AUTH, timeout=30) as http:
            answer = http.post(PREDICT, json={"inputs": [ROW]})
        assert time.monotonic() - began < 1.0
        assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
        limit = f"the server runs its limit of {LIMIT} requests at once; retry"
        assert answer.json() == {"error": limit}
        # A request answered at once on the loop (a cheap route, no body) holds no slot.
        status, seconds = timed("GET", server, "/v2/health/live")
        assert status == 200 and seconds < 1.0, f"{status} after {seconds:.2f} s"
    # The slots come back as the held requests end (their connections closed).
    deadline = time.monotonic() + 5
    while timed("POST", server, PREDICT, json={"inputs": [ROW]})[0] != 200:
        assert time.monotonic() < deadline, "the slots did not come back"
        time.sleep(0.1)


def test_a_refused_head_whose_body_never_comes_is_answered_and_closed_within_the_drain(
    server: ServeProcess,
) -> None:
    """Drained for at most DRAIN_S (and a sweep of its deadlines), not the body timeout."""
    with head(server.port, auth=False) as sock:
        began = time.monotonic()
        sock.settimeout(BODY_TIMEOUT * 2)
        reply = b""
        while b"}" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        seconds = time.monotonic() - began
        assert reply.startswith(b"HTTP/1.1 401") and b"connection: close" in reply, reply
        assert seconds < DRAIN_S + 1.5, f"{seconds:.2f} s"
        assert sock.recv(1) == b""  # closed
