"""Request bodies that must be refused whole, over real sockets to a real `aiaas serve` (serve
hunt #1 and #3).

- A gzip body of many empty members: each member's remainder was copied for the next, so a
  6 MiB body (314,570 members, the predict limit) held the event loop for ~43 s, health
  probes included; a 3 MB one took 9 s of a control-plane thread.
- A chunked body that did not end in its last chunk (the client died, a chunk size that is not
  hex) was taken as complete: a 200 predicting from it, and a 202 for a batch file cut at half
  its rows, then scored as a succeeded job (infra/local/chunked.py).
- A chunked body over the limit was answered 413 with its rest unread: the socket was reset
  under a client still writing (curl), which never read the 413.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.chunked import CUT_MESSAGE
from tests import onnx_factory
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROW = [0.5] * 64
PREDICT = json.dumps({"inputs": [ROW]}).encode()
EMPTY_MEMBER = gzip.compress(b"", mtime=0)  # 20 bytes
CSV = b"x_0,x_1,x_2,x_3\n" + b"".join(b"1,2,3,%d\n" % (i % 10) for i in range(1000))
JOBS = "/control/batch/tiny/jobs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("bodies")
    store, _ = publish_digits(root)
    onnx = onnx_factory.linear_classifier(root / "tiny.onnx")
    Registry(LocalStore(store)).publish(onnx_factory.manifest_for(onnx, "tiny", "1"), onnx)
    env = {"AIAAS_API_TOKEN": TOKEN}
    yield from start_serve(store, "--body-timeout", "5", env=env, headers=AUTH)


def exchange(server: ServeProcess, sent: bytes, close_write: bool = False) -> bytes:
    """`sent` written as it is (then the write side shut: the client died), and the reply."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(sent)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def _length(reply: bytes) -> int:
    for line in reply.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def answer(reply: bytes) -> tuple[int, dict[str, object]]:
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


def chunked_head(method: str, path: str, auth: bool = True) -> bytes:
    token = f"Authorization: Bearer {TOKEN}\r\n" if auth else ""
    return (
        f"{method} {path} HTTP/1.1\r\nHost: h\r\n{token}Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


# ---- gzip members: linear, bounded, and off the loop's back ---------------------------------


class Prober:
    """GET /v2/health/live every 50 ms on a thread: the slowest answer while it ran."""

    def __init__(self, server: ServeProcess) -> None:
        self.url = f"{server.base}/v2/health/live"
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            httpx.get(self.url, headers=AUTH, timeout=120)
            self.times.append(time.monotonic() - began)
            time.sleep(0.05)


def test_a_6_mib_body_of_empty_gzip_members_is_refused_at_once_and_the_loop_stays_free(
    server: ServeProcess,
) -> None:
    url = f"{server.base}/models/{MODEL}/predict"
    for _ in range(3):  # the route now runs inline, on the event loop
        assert httpx.post(url, content=PREDICT, headers=AUTH, timeout=10).status_code == 200
    first = gzip.compress(PREDICT, mtime=0)
    body = first + EMPTY_MEMBER * ((6 * 1024 * 1024 - len(first)) // len(EMPTY_MEMBER))
    headers = {**AUTH, "content-encoding": "gzip", "content-type": "application/json"}
    with Prober(server) as prober:
        began = time.monotonic()
        got = httpx.post(url, content=body, headers=headers, timeout=10)  # was 200 after ~43 s
        took = time.monotonic() - began
    assert (got.status_code, got.json()) == (
        400,
        {"error": "request body has over 1024 gzip members: send it as one gzip stream"},
    )
    assert took < 2.0
    assert max(prober.times) < 0.5, prober.times
    # a body of a few members (as `cat a.gz b.gz` makes) is still read whole
    split = gzip.compress(PREDICT[:40]) + gzip.compress(PREDICT[40:]) + EMPTY_MEMBER * 1000
    again = httpx.post(url, content=split, headers=headers, timeout=10)
    assert (again.status_code, again.json()["model"]) == (200, MODEL)


def test_the_control_plane_refuses_many_gzip_members_at_once(server: ServeProcess) -> None:
    headers = {**AUTH, "content-encoding": "gzip", "content-type": "text/csv"}
    body = gzip.compress(CSV) + EMPTY_MEMBER * 150_000  # 3 MB: 9 s of CPU, then a 202
    # the control plane's cold start (FastAPI's import, ~2 s on a busy host) is not timed
    assert httpx.get(f"{server.base}/control/models", headers=AUTH, timeout=30).status_code == 200
    began = time.monotonic()
    got = httpx.put(f"{server.base}{JOBS}/members.csv", content=body, headers=headers, timeout=5)
    assert (got.status_code, got.json()) == (
        400,
        {"error": "request body has over 1024 gzip members: send it as one gzip stream"},
    )
    assert time.monotonic() - began < 2.0
    # bgzip's way (one member per block) is taken: every row is scored
    blocks = b"".join(gzip.compress(CSV[i : i + 1000]) for i in range(0, len(CSV), 1000))
    put = httpx.put(f"{server.base}{JOBS}/blocks.csv", content=blocks, headers=headers, timeout=10)
    assert put.status_code == 202, put.text
    assert finished(server, "blocks.csv")["scored_rows"] == 1000


def finished(server: ServeProcess, file: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = httpx.get(f"{server.base}{JOBS}/{file}", headers=AUTH, timeout=10).json()
        if job["status"] not in ("pending", "running"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {file} still {job['status']} after 30 s")


# ---- chunked bodies: dispatched only once the last chunk came -------------------------------


@pytest.mark.parametrize(
    ("sent", "close_write"),
    [
        pytest.param(chunk(PREDICT), True, id="cut-after-a-whole-chunk"),
        pytest.param(chunk(PREDICT[:50]) + chunk(PREDICT[50:]), True, id="cut-after-chunks"),
        pytest.param(chunk(PREDICT) + b"10\r\nabc", True, id="cut-inside-a-chunk"),
        pytest.param(chunk(PREDICT) + b"ZZ\r\n", False, id="chunk-size-not-hex"),
        # was a 400 "request body is not valid JSON: ... zero-length", naming neither
        pytest.param(b"ZZ\r\n", False, id="chunk-size-not-hex-first"),
        # Trailers: granian's iterator gives a trailers frame as it gives hyper's error (b"",
        # then the end's b""), and neither closes the connection first; refused alike, as
        # infra/local/chunked.py says. A granian that tells them apart fails here.
        pytest.param(chunk(PREDICT) + b"0\r\nX-Checksum: 1\r\n\r\n", False, id="trailers"),
    ],
)
def test_a_chunked_body_not_ending_in_its_last_chunk_is_400(
    server: ServeProcess, sent: bytes, close_write: bool
) -> None:
    reply = exchange(server, chunked_head("POST", f"/models/{MODEL}/predict") + sent, close_write)
    assert answer(reply) == (400, {"error": CUT_MESSAGE}), reply[:300]
    assert b"\r\nconnection: close\r\n" in reply.lower()


def test_a_whole_chunked_body_is_still_answered(server: ServeProcess) -> None:
    plain = httpx.post(f"{server.base}/models/{MODEL}/predict", content=PREDICT, headers=AUTH)
    head = chunked_head("POST", f"/models/{MODEL}/predict")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + chunk(PREDICT[:30]) + b"%x\r\n" % (len(PREDICT) - 30))
        time.sleep(0.2)  # a chunk's data arriving in two reads
        sock.sendall(PREDICT[30:100])
        time.sleep(0.2)
        sock.sendall(PREDICT[100:] + b"\r\n0\r\n\r\n")
        reply = b""
        while len(reply.partition(b"\r\n\r\n")[2]) < _length(reply):
            reply += sock.recv(65536)
    assert answer(reply) == (200, plain.json())


def test_a_chunked_body_over_the_limit_is_still_413(server: ServeProcess) -> None:
    piece = chunk(b"a" * 65536)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(chunked_head("POST", f"/models/{MODEL}/predict"))
        try:
            for _ in range(16 * 16):  # 16 MiB at most
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(10)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:300]


OVER = {"error": "request body is over the 10485760 byte limit"}
CURL_CHUNKED = ["curl", "-sS", "-X", "POST", "-T", "-", "-H", "Transfer-Encoding: chunked"]


def test_a_client_still_writing_a_chunked_body_over_the_limit_reads_its_413(
    server: ServeProcess,
) -> None:
    """12 MiB written as curl and nginx write a body (a piece at a time, paced as a network
    paces it, stopping at a failed write): closed with the rest unread at the limit, the socket
    was reset under the writer, which never read the 413, 5 tries in 5 (`curl -T -` of 11 MiB
    chunked, under load: 10 in 100). The rest is read and dropped first (a lingering close)."""
    piece = chunk(b"a" * 65536)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(chunked_head("POST", f"/models/{MODEL}/predict"))
            for _ in range(12 * 16):
                sock.sendall(piece)  # BrokenPipeError: the 413 lost
                time.sleep(0.001)
            sock.sendall(b"0\r\n\r\n")
            reply = b""
            while len(reply.partition(b"\r\n\r\n")[2]) < _length(reply) and (
                data := sock.recv(65536)
            ):
                reply += data
        assert answer(reply) == (413, OVER)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_uploading_a_chunked_body_over_the_limit_gets_the_413(server: ServeProcess) -> None:
    url = f"{server.base}/models/{MODEL}/predict"
    for _ in range(10):
        sent = subprocess.run(
            [*CURL_CHUNKED, "-H", f"Authorization: Bearer {TOKEN}", "-w", "\n%{http_code}", url],
            input=b"x" * (11 << 20),
            capture_output=True,
            timeout=30,
        )
        assert sent.stdout.rpartition(b"\n")[2] == b"413", sent.stderr
        assert json.loads(sent.stdout.rpartition(b"\n")[0]) == OVER


def test_a_batch_file_cut_mid_upload_is_refused_and_no_job_is_made(server: ServeProcess) -> None:
    half = CSV[: CSV.index(b"\n", len(CSV) // 2) + 1]  # 500 whole rows of the 1,000
    reply = exchange(server, chunked_head("PUT", f"{JOBS}/cut.csv") + chunk(half), True)
    assert answer(reply) == (400, {"error": CUT_MESSAGE})  # was a 202, then "succeeded"
    gone = httpx.get(f"{server.base}{JOBS}/cut.csv", headers=AUTH, timeout=10)
    assert gone.status_code == 404
    whole = chunked_head("PUT", f"{JOBS}/whole.csv") + chunk(half) + chunk(CSV[len(half) :])
    assert answer(exchange(server, whole + b"0\r\n\r\n"))[0] == 202
    assert finished(server, "whole.csv")["scored_rows"] == 1000


def test_a_refused_request_with_a_cut_chunked_body_is_answered_and_closed(
    server: ServeProcess,
) -> None:
    head = chunked_head("POST", f"/models/{MODEL}/predict", auth=False)
    reply = exchange(server, head + chunk(PREDICT), close_write=True)
    assert answer(reply)[0] == 401
    assert b"\r\nconnection: close\r\n" in reply.lower()
