"""`aiaas serve --workers N` downloads each model file once (functions/runtime/cache_lock.py).

Every worker loads the same models at start, into one cache directory: each downloaded every
file at once into a `.part-*` of its own, N times the bandwidth and N times the model's disk
(docs/large_models.md; a 1 GB model and 2 workers filled a pod's 2 GiB emptyDir). Now one
downloads and the others wait and check its file; a downloader killed with -9 midway lets a
waiter take over. Real server, real workers, moto's S3 behind a proxy that trickles the model
file (so the downloads surely overlap) and counts the GETs of it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from functions.runtime.cache import sha256_file
from functions.runtime.refs import model_key
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests.infra.test_serve import ROOT
from tests.infra.test_serve_operator import publish_linear, serve_command
from tests.reliability.s3faults import FaultyS3Proxy
from tests.s3server import MotoServer, free_port, listens

MODEL = "slow"
TRICKLE_BYTES, TRICKLE_EVERY_S = 64, 0.1  # the 3 KB model file in ~5 s


@contextlib.contextmanager
def serving(
    s3_store: S3Store, proxy: FaultyS3Proxy, cache: Path, log: Path, workers: int
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    # --models: each worker loads the model at its start, all at once.
    command = serve_command(Path(), "--port", str(port), "--models", MODEL)
    command[command.index("--store") + 1] = f"s3://{s3_store.bucket}/registry"
    command += ["--workers", str(workers)]
    env = {**os.environ, "AWS_ENDPOINT_URL": proxy.endpoint, "AIAAS_CACHE_DIR": str(cache)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not listens(process.pid, port):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def model_gets(proxy: FaultyS3Proxy, s3_store: S3Store) -> int:
    key = f"/{s3_store.bucket}/registry/{model_key(MODEL, '1')}"
    return sum(1 for method, path in proxy.seen if method == "GET" and path.startswith(key))


def wait_loaded(log: Path, times: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while log.read_text().count(f"loaded {MODEL}:1 from ") < times:
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


class Trickled(NamedTuple):
    """The model published, a proxy trickling its file, and where the server caches and logs."""

    sha256: str
    proxy: FaultyS3Proxy
    cache: Path
    log: Path


@pytest.fixture
def trickled(s3_store: S3Store, moto_server: MotoServer, tmp_path: Path) -> Iterator[Trickled]:
    publish_linear(s3_store, tmp_path, MODEL)
    sha256 = Registry(s3_store).manifest(MODEL, "1").file.sha256
    proxy = FaultyS3Proxy(moto_server.port).start()
    proxy.trickle = "model.onnx"
    proxy.trickle_bytes, proxy.trickle_every_s = TRICKLE_BYTES, TRICKLE_EVERY_S
    try:
        yield Trickled(sha256, proxy, tmp_path / "cache", tmp_path / "serve.log")
    finally:
        proxy.stop()


def workers_of(process: subprocess.Popen[bytes]) -> list[int]:
    pid = process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def writing_part(pid: int) -> bool:
    """Whether worker `pid` has a download's `.part-*` open: it is the one downloading."""
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if "/.part-" in os.readlink(fd):
                    return True
    return False


def test_three_workers_download_the_model_once(s3_store: S3Store, trickled: Trickled) -> None:
    sha256, proxy, cache, log = trickled
    with serving(s3_store, proxy, cache, log, workers=3) as (process, base):
        wait_loaded(log, 3, process)
        assert model_gets(proxy, s3_store) == 1, log.read_text()  # was 3: one a worker
        entry = cache / f"{sha256}.onnx"
        assert sha256_file(entry) == sha256
        assert not [p.name for p in cache.iterdir() if p.name.startswith((".part-", ".lock-"))]
        for _ in range(6):  # whichever worker answers serves it
            ready = httpx.get(f"{base}/v2/models/{MODEL}/ready", timeout=10)
            assert ready.status_code == 200, ready.text


def test_a_downloading_worker_killed_with_minus_9_lets_a_waiter_take_over(
    s3_store: S3Store, trickled: Trickled
) -> None:
    sha256, proxy, cache, log = trickled
    with serving(s3_store, proxy, cache, log, workers=2) as (process, base):
        deadline = time.monotonic() + 60
        while not (downloading := [p for p in workers_of(process) if writing_part(p)]):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(1)  # midway, the other worker waiting for it
        assert downloading == [p for p in workers_of(process) if writing_part(p)]
        assert model_gets(proxy, s3_store) == 1
        os.kill(downloading[0], signal.SIGKILL)
        wait_loaded(log, 2, process)  # the waiter, and the worker granian starts again
        assert model_gets(proxy, s3_store) == 2, log.read_text()  # the waiter's, whole
        assert sha256_file(cache / f"{sha256}.onnx") == sha256
        ready = httpx.get(f"{base}/v2/models/{MODEL}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
