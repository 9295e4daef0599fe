"""Processes sharing a model cache take turns downloading an entry (cache_lock.py): a waiter
keeps the download's deadline, and a miss pays next to nothing for the lock.

The other cases run a real `aiaas serve --workers N` (tests/infra/test_serve_workers_one_download.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from http import HTTPStatus
from pathlib import Path

import onnxruntime as ort
import pytest
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache, version_digest
from functions.runtime.cache_lock import one_download
from functions.runtime.download_deadline import DownloadTooSlow
from functions.runtime.refs import model_key
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests.infra.test_pull_full_disk import publish_external
from tests.infra.test_serve_operator import publish_linear
from tests.reliability.s3faults import FaultyS3Proxy
from tests.s3server import MotoServer

REPO = Path(__file__).resolve().parents[2]
DOWNLOADER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from functions.runtime.cache import ArtifactCache
    from functions.runtime.registry import Registry
    from functions.runtime.s3store import S3Store

    bucket, cache_dir = sys.argv[1:3]
    store = S3Store(bucket, "registry")
    ArtifactCache(store, Path(cache_dir)).fetch(Registry(store).manifest("m", "1"))
    """
)


def test_a_waiter_past_the_download_deadline_is_the_downloads_503(
    s3_store: S3Store, moto_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish_linear(s3_store, tmp_path, "m")
    manifest = Registry(s3_store).manifest("m", "1")
    proxy = FaultyS3Proxy(moto_server.port).start()
    proxy.trickle, proxy.trickle_bytes, proxy.trickle_every_s = "model.onnx", 16, 0.5
    cache = tmp_path / "cache"
    env = os.environ | {"PYTHONPATH": str(REPO), "AWS_ENDPOINT_URL": proxy.endpoint}
    downloader = subprocess.Popen(
        [sys.executable, "-c", DOWNLOADER, s3_store.bucket, str(cache)], env=env, cwd=REPO
    )
    key = f"/{s3_store.bucket}/registry/{model_key('m', '1')}"
    try:
        deadline = time.monotonic() + 30
        while not any(m == "GET" and p.startswith(key) for m, p in proxy.seen):
            assert downloader.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        monkeypatch.setenv("AIAAS_DOWNLOAD_MAX_SECONDS", "1")
        started = time.monotonic()
        with pytest.raises(DownloadTooSlow) as caught:
            ArtifactCache(s3_store, cache).fetch(manifest)  # waits: a trickle holds the lock
        assert 1 <= time.monotonic() - started < 3
        assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
        assert caught.value.retry_after_s == 5
        assert "for another process's download of it" in caught.value.message
        assert "past the download's deadline of 1.0 s (AIAAS_DOWNLOAD_MAX_SECONDS)" in (
            caught.value.message
        )
        assert caught.value.public_message == (
            "model.onnx could not be read from the model store in time (another process is "
            "still downloading it); retry"
        )
        assert sum(1 for m, p in proxy.seen if m == "GET" and p.startswith(key)) == 1
        assert downloader.poll() is None  # still downloading, untouched
    finally:
        downloader.kill()
        downloader.wait()
        proxy.stop()


def test_taking_the_lock_uncontended_costs_microseconds(tmp_path: Path) -> None:
    """A cache miss (a download: milliseconds to minutes) pays an open, a flock and an unlink;
    a hit takes no lock."""
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        with one_download(tmp_path, "e.onnx", "s3://b/k/model.onnx", 100) as waited:
            assert not waited
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 2e-3, per_call  # 0.05-0.2 ms on a loaded 2-core box; a download: far more
    assert list(tmp_path.iterdir()) == []  # the lock file goes with its holder


def test_processes_racing_a_version_with_external_data_download_it_once(
    tmp_path: Path, mocker: MockerFixture
) -> None:
    """Four caches on one directory (as four workers' are) fetch a folder version at once: its
    files are read from the store once, and each gets the one folder, checked."""
    store = LocalStore(tmp_path / "store")
    publish_external(store, tmp_path)
    manifest = Registry(store).manifest("ext", "1")
    reads = mocker.spy(store, "open_read")
    barrier, paths = threading.Barrier(4), []

    def fetch() -> None:
        cache = ArtifactCache(store, tmp_path / "cache")
        barrier.wait()
        paths.append(cache.fetch(manifest))

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(paths) == 4 and len(set(paths)) == 1
    files = {call.args[0].rsplit("/", 1)[-1] for call in reads.call_args_list}
    assert files == {"model.onnx", "model.onnx.data"}
    assert reads.call_count == 2  # one read of each file (each under 16 MB: one part)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [version_digest(manifest)]
    ort.InferenceSession(str(paths[0]), providers=["CPUExecutionProvider"])
