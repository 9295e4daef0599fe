"""Stopping `aiaas serve` while its start-up is still downloading a model.

The store is moto's S3 server behind `bench/throttle_proxy.py` at 1 MB/s a connection, so the
5 MB model takes ~5 s to arrive and every signal here lands mid-download. The real CLI runs in
a subprocess, one worker (granian's embedded server, in process) and two (its supervisor).

Found: the app waited up to 30 s for the model the warm-up was loading, on the event loop
(granian calls `__rsgi_del__` there), so one SIGTERM took until the model had loaded, and a
one-worker server's second SIGTERM/SIGINT was not even read: Ctrl-C Ctrl-C hung, then exited 0.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from bench.throttle_proxy import ThrottleProxy
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store, make_s3_client
from tests import onnx_factory
from tests.infra.test_serve import ROOT
from tests.infra.test_serve_operator import serve_command
from tests.s3server import MotoServer, free_port

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

MODEL = "slowload"
FEATURES = 125_000  # x 10 float32 weights: a 5 MB model, ~5 s through the proxy
RATE = 1_000_000  # bytes/s on each connection
PROMPT_S = 2.0  # a stop with nothing in flight ends within this (measured: 0.01-0.11 s)


@dataclass(frozen=True)
class Published:
    bucket: str
    proxy: ThrottleProxy
    path: Path  # the model file as published
    sha256: str


@pytest.fixture(scope="module")
def published(
    moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Published]:
    bucket = f"aiaas-slowload-{uuid.uuid4().hex[:8]}"
    make_s3_client().create_bucket(Bucket=bucket)
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    onnx_factory.linear_classifier(path, features=FEATURES, classes=10)
    Registry(S3Store(bucket, "registry")).publish(onnx_factory.manifest_for(path, MODEL, "1"), path)
    proxy = ThrottleProxy(moto_server.port, RATE).start()
    yield Published(bucket, proxy, path, hashlib.sha256(path.read_bytes()).hexdigest())
    proxy.stop()


class Server:
    """`aiaas serve` on the published bucket, through the throttling proxy."""

    def __init__(self, published: Published, cache: Path, workers: int, s3: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = cache.parent / f"serve-{self.port}.log"
        command = serve_command(Path(), "--port", str(self.port), "--workers", str(workers))
        command[command.index("--store") + 1] = f"s3://{published.bucket}/registry"
        env = {**os.environ, "AWS_ENDPOINT_URL": s3,
               "AIAAS_CACHE_DIR": str(cache)}  # fmt: skip
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        """Until the port accepts (the warm-up has begun): not its readiness, which would
        wait for the model."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"aiaas serve did not listen: {self.output()}")

    def signal(self, signum: int, times: int = 1, gap_s: float = 0.6) -> float:
        """Send `signum` `times` times (to the group for SIGINT, as a terminal's Ctrl-C);
        when the last went."""
        for n in range(times):
            if n:
                time.sleep(gap_s)
            if signum == signal.SIGINT:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        return time.monotonic()

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def serve(published: Published, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(workers: int = 1, cache: Path = tmp_path / "cache", slow: bool = True) -> Server:
        s3 = published.proxy.endpoint if slow else os.environ["AWS_ENDPOINT_URL"]
        servers.append(Server(published, cache, workers, s3))
        return servers[-1]

    yield start
    for server in servers:
        server.kill()


def _downloading(cache: Path, timeout: float = 10) -> None:
    """Until a download has put bytes in a temp file of `cache`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = list(cache.glob(".part-*")) if cache.is_dir() else []
        if any(p.stat().st_size and _written(p) for p in parts):
            return
        time.sleep(0.05)
    raise RuntimeError(f"no download began in {cache}")


def _written(part: Path) -> bool:
    """A temp file is made at its full size (ftruncate): some of it is bytes, not a hole."""
    return os.stat(part).st_blocks > 0


@pytest.mark.parametrize("workers", [1, 2])
def test_one_stop_signal_mid_download_exits_at_once(
    serve: Callable[..., Server], tmp_path: Path, published: Published, workers: int
) -> None:
    server = serve(workers)
    _downloading(tmp_path / "cache")
    sent = server.signal(signal.SIGTERM)
    code = server.wait()
    took = time.monotonic() - sent
    assert code == 0, server.output()
    assert took < PROMPT_S, f"{took:.1f} s: {server.output()}"
    assert "terminate called" not in server.output()
    assert "stopped" in server.output()
    assert not (tmp_path / "cache" / f"{published.sha256}.onnx").exists()  # it did not wait


@pytest.mark.parametrize(("workers", "signum"), [(1, signal.SIGINT), (1, signal.SIGTERM),
                                                 (2, signal.SIGINT)])  # fmt: skip
def test_two_signals_mid_download_end_at_once(
    serve: Callable[..., Server], tmp_path: Path, workers: int, signum: int
) -> None:
    """An operator's Ctrl-C Ctrl-C (or two SIGTERMs). With nothing in flight the first one
    may already have ended it (0); a second that finds it ending makes it 1, said why."""
    server = serve(workers)
    _downloading(tmp_path / "cache")
    sent = server.signal(signum, times=2)
    code = server.wait()
    took = time.monotonic() - sent
    assert took < PROMPT_S, f"{took:.1f} s: {server.output()}"
    assert code in (0, 1), server.output()
    if code == 1:
        assert "cut off" in server.output() or "another signal" in server.output()
    assert "Traceback" not in server.output() and "terminate called" not in server.output()


def _predict(base: str) -> tuple[int, dict[str, object], float]:
    answer = httpx.post(
        f"{base}/models/{MODEL}/predict", json={"inputs": [[0.001] * FEATURES]}, timeout=40
    )
    return answer.status_code, answer.json(), time.monotonic()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_request_during_the_load_waits_and_a_stop_lets_it_finish(
    serve: Callable[..., Server], tmp_path: Path, workers: int
) -> None:
    """A request for a model still loading waits for it (no 503, no Retry-After: the
    promise of docs/serve.md is the answer), and a SIGTERM is the normal stop: it is answered."""
    server = serve(workers)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(_predict, server.base)
        _downloading(tmp_path / "cache")
        time.sleep(0.3)  # the request is in (its first call runs on a thread, waiting)
        server.signal(signal.SIGTERM)
        status, body, _ = call.result()
    assert status == 200, body
    assert body["model"] == MODEL
    assert server.wait() == 0, server.output()


def test_a_second_signal_cuts_a_request_waiting_for_the_load_off(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(1)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(_predict, server.base)
        _downloading(tmp_path / "cache")
        time.sleep(0.3)
        sent = server.signal(signal.SIGINT, times=2)
        status, body, answered = call.result()
    assert status == 503 and "retry" in str(body["error"]), body
    assert answered - sent < PROMPT_S
    assert server.wait(PROMPT_S) == 1, server.output()


def test_a_server_killed_mid_download_never_serves_a_partial_file(
    serve: Callable[..., Server], tmp_path: Path, published: Published
) -> None:
    """SIGKILL mid-download leaves a temp file, never the cache's name for the model; and a
    file at that name that is not the model (cut short) is fetched again, not served."""
    cache = tmp_path / "cache"
    killed = serve(1, cache)
    _downloading(cache)
    killed.kill()
    final = cache / f"{published.sha256}.onnx"
    assert not final.exists()
    partial = max(cache.glob(".part-*"), key=lambda p: p.stat().st_blocks)
    final.write_bytes(partial.read_bytes()[: published.path.stat().st_size // 2])

    server = serve(1, cache, slow=False)
    status, body, _ = _predict(server.base)
    assert status == 200, body
    row = np.full((1, FEATURES), 0.001, dtype=np.float32)
    expected = ort.InferenceSession(str(published.path)).run(None, {"x": row})[0]
    outputs = body["outputs"]
    assert isinstance(outputs, dict)
    np.testing.assert_allclose(outputs["logits"], expected, rtol=1e-5, atol=1e-5)
    assert hashlib.sha256(final.read_bytes()).hexdigest() == published.sha256
