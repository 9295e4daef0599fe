"""Request bodies that must be refused whole, over real sockets to a real `aiaas serve` (serve
hunt #1).

- A gzip body of many empty members: each member's remainder was copied for the next, so a
  6 MiB body (314,570 members, the predict limit) held the event loop for ~43 s, health
  probes included; a 3 MB one took 9 s of a control-plane thread.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
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
