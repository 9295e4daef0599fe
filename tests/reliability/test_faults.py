"""Faults of the model store and the container disk, made for real: the predict function
answers 503 with a clear message while they last, never serves a bad model, and recovers.

S3 outages and slow S3 come from a TCP proxy in front of moto's server (`s3proxy.py`).
Already covered elsewhere and not repeated here: corrupted, missing and non-ONNX artifacts
(tests/functions/test_predict_errors.py, tests/infra/test_serve_http.py), a broken promotion
while warm (test_predict_errors.py, tests/runtime/test_pool.py), cold loads racing in threads and
in two processes on one cache directory (tests/runtime/test_pool.py, tests/runtime/test_cache.py).
"""

from __future__ import annotations

import errno
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, alias_key
from functions.runtime.s3store import S3Store
from functions.runtime.settings import TransferSettings
from functions.runtime.store import LocalStore
from functions.runtime.transfer import FileSink
from tests import onnx_factory
from tests.functions.test_predict_errors import INFER, ROW, assert_no_internals
from tests.functions.test_predict_events import MODEL, body_of, digits_service, http_event
from tests.reliability.s3proxy import DelayingProxy
from tests.s3server import MotoServer

UNAVAILABLE = {"error": "model is not available"}


def publish(store: Any, workdir: Path, version: str = "1", seed: int = 0) -> None:
    path = onnx_factory.linear_classifier(
        workdir / f"m{version}.onnx", features=64, classes=10, seed=seed
    )
    Registry(store).publish(onnx_factory.manifest_for(path, MODEL, version), path)


def predict(service: PredictService) -> tuple[int, Any]:
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", ROW))
    return response["statusCode"], body_of(response)


@pytest.fixture
def bucket(s3_store: S3Store, tmp_path: Path) -> str:
    """A bucket with digits-mlp:1 published, straight to moto (before any proxy)."""
    publish(s3_store, tmp_path)
    return s3_store.bucket


@pytest.fixture
def proxy(
    bucket: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[DelayingProxy]:
    """A proxy port for S3, not yet listening; the service under test reaches S3 through it."""
    proxy = DelayingProxy(moto_server.port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
    yield proxy
    proxy.stop()


def s3_service(bucket: str, tmp_path: Path) -> PredictService:
    store = S3Store(bucket, "registry")  # its client is built on first use: through the proxy
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": MODEL}, pool)


def test_s3_unreachable_at_cold_start_is_503_then_recovers(
    bucket: str, tmp_path: Path, proxy: DelayingProxy
) -> None:
    service = s3_service(bucket, tmp_path)
    service.warm()  # logs the failure and stays up, as a Lambda init must
    start = time.monotonic()
    assert predict(service) == (503, UNAVAILABLE)
    ready = service.handle(http_event("GET", f"/v2/models/{MODEL}/ready"))
    assert (ready["statusCode"], body_of(ready)) == (503, {**UNAVAILABLE, "ready": False})
    assert_no_internals(ready, bucket, str(proxy.port))
    assert time.monotonic() - start < 20  # bounded retries, no hang
    proxy.start()  # S3 is back: the next request loads the model, no restart needed
    status, body = predict(service)
    assert (status, body["model"], body["version"]) == (200, MODEL, "1")


def test_slow_s3_delays_the_cold_start_but_serves(
    bucket: str, tmp_path: Path, proxy: DelayingProxy
) -> None:
    proxy.delay = 0.1
    proxy.start()
    service = s3_service(bucket, tmp_path)
    # Read the capture setting as container init does (`warm` would load the model too): else
    # the first request reads it on a background thread, whose bytes may reach the proxy after
    # `reached` is taken (CI saw 817 bytes more).
    service.capture.refresh()
    start = time.monotonic()
    assert predict(service)[0] == 200
    assert time.monotonic() - start >= 0.3  # alias, manifest and model reads each waited
    reached = proxy.upstream_bytes
    assert reached > 0  # the cold start's reads went through the proxy
    assert predict(service)[0] == 200
    # Warm requests never touch S3: counted at the proxy, not timed (a 0.1 s bound on the warm
    # call measured the machine's load as much as S3 traffic).
    assert proxy.upstream_bytes == reached


def test_s3_slower_than_the_read_timeout_is_503_then_recovers(
    bucket: str, tmp_path: Path, proxy: DelayingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_S3_READ_TIMEOUT", "0.5")
    proxy.delay = 2.0
    proxy.start()
    service = s3_service(bucket, tmp_path)
    start = time.monotonic()
    assert predict(service) == (503, UNAVAILABLE)
    assert time.monotonic() - start < 10  # 2 attempts x 0.5 s, not the 2 s the proxy holds
    proxy.delay = 0.0
    assert predict(service)[0] == 200


def write_alias(store: LocalStore, version: str) -> None:
    """An alias record as another writer left it: pointing at a version that does not exist."""
    record = {"alias": "production", "version": version, "updated_at": "", "updated_by": "x"}
    store.put_bytes(alias_key(MODEL, "production"), json.dumps(record).encode())


def test_alias_pointing_at_a_missing_version_is_503_naming_the_alias(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish(store, tmp_path)
    write_alias(store, "7")
    service = digits_service(tmp_path, AIAAS_ALIAS_TTL="0")
    message = (
        f"alias 'production' of model '{MODEL}' points at version '7', which is not in the "
        "registry; point the alias at a published version"
    )
    assert predict(service) == (503, {"error": message})
    ready = service.handle(http_event("GET", "/v2/health/ready"))
    assert (ready["statusCode"], body_of(ready)) == (503, {"error": message, "ready": False})
    write_alias(store, "1")
    assert predict(service)[0] == 200
    write_alias(store, "7")  # dangling again while warm: version 1 keeps serving
    status, body = predict(service)
    assert (status, body["version"]) == (200, "1")


def test_cache_disk_full_is_503_leaves_no_partial_file_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ENOSPC is injected where downloaded parts are written into the cache file.

    A really full filesystem needs a size-limited mount (tmpfs or a loop device), which takes
    root and a mount on a machine other people use; the write is patched instead, and it
    writes half of each part before failing, as a disk filling up mid-download does. (A disk
    known to lack room before the download starts is not this case: the model is then loaded
    from memory, see test_external_data.) AIAAS_MODEL_LOAD=disk: the default, auto, loads it
    from memory instead (the next test).
    """
    store = LocalStore(tmp_path / "store")
    publish(store, tmp_path)
    real_write = FileSink.write_at
    monkeypatch.setattr(FileSink, "write_at", _disk_fills_up(real_write))
    cache = tmp_path / "cache"
    on_disk = ArtifactCache(store, cache, TransferSettings(load="disk"))
    service = service_from_env({"AIAAS_MODEL": MODEL}, ModelPool(Registry(store), on_disk))
    assert predict(service) == (503, UNAVAILABLE)
    assert "cache disk is full" in caplog.text  # the log says why; the client not
    assert sorted(p.name for p in cache.iterdir()) == []  # the partial download is gone
    monkeypatch.setattr(FileSink, "write_at", real_write)  # space is freed
    assert predict(service)[0] == 200
    # and the record of the version served (functions/runtime/served_record.py)
    assert sorted(p.suffix or p.name for p in cache.iterdir()) == [".onnx", "served"]


def test_cache_disk_filling_mid_download_loads_from_memory_with_auto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The free-space check passed, then the disk filled (`aiaas serve --workers 2` on a
    small cache disk: both workers downloading the model at once): every worker failed to
    load at start, where `auto` promises memory when the disk lacks room."""
    store = LocalStore(tmp_path / "store")
    publish(store, tmp_path)
    monkeypatch.setattr(FileSink, "write_at", _disk_fills_up(FileSink.write_at))
    cache = tmp_path / "cache"
    auto = ArtifactCache(store, cache, TransferSettings(load="auto"))
    service = service_from_env({"AIAAS_MODEL": MODEL}, ModelPool(Registry(store), auto))
    status, body = predict(service)
    assert (status, body["model"]) == (200, MODEL)
    assert sorted(p.name for p in cache.iterdir()) == []  # served from memory, nothing partial
    assert "its disk filled up while the model was being written" in caplog.text


def _disk_fills_up(real_write: Any) -> Any:
    """FileSink.write_at writing half of each part, then failing as a full disk does."""

    def write_at(sink: FileSink, offset: int, data: bytes) -> None:
        real_write(sink, offset, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return write_at


def test_infer_route_gives_the_same_503_while_the_store_is_down(
    bucket: str, tmp_path: Path, proxy: DelayingProxy
) -> None:
    service = s3_service(bucket, tmp_path)
    response = service.handle(http_event("POST", f"/v2/models/{MODEL}/infer", INFER))
    assert (response["statusCode"], body_of(response)) == (503, UNAVAILABLE)


def test_a_long_outage_is_one_log_line_a_kind_not_one_a_ttl(
    bucket: str,
    tmp_path: Path,
    proxy: DelayingProxy,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An operator's serve through an S3 outage logged 'refresh of ... failed' and 'capture
    setting ... not read' again every TTL, per model and worker: hours of the same two lines."""
    monkeypatch.setenv("AIAAS_S3_MAX_ATTEMPTS", "1")
    caplog.set_level(logging.INFO, "aiaas")
    proxy.start()
    store = S3Store(bucket, "registry")
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "0"}, pool)
    served = service.served
    assert predict(service)[0] == 200
    proxy.stop()

    def settled() -> None:
        # The refreshes the request started on threads (the alias's, and with a TTL of 0 the
        # capture setting's too): their lines are logged before the counts are read.
        while served._refreshing.locked() or service.capture._reading.locked():
            time.sleep(0.01)

    def tries() -> tuple[list[str], list[str]]:
        assert predict(service)[0] == 200  # the loaded version serves on
        settled()
        service.capture.refresh()
        lines = [r.getMessage() for r in caplog.records]
        return (
            [line for line in lines if line.startswith(f"refresh of {MODEL} failed")],
            [line for line in lines if line.startswith(f"capture setting of {MODEL} not read")],
        )

    # A kept-alive connection cut, then connections refused: two kinds, each said once. Which
    # try meets a pooled connection that was cut depends on which one the pool hands out, so
    # a kind may first show on a later try; none is ever said twice.
    for _ in range(5):
        said = tries()
    for lines in said:
        assert 1 <= len(lines) <= 2 and len(set(lines)) == len(lines), lines
    proxy.start()
    assert predict(service)[0] == 200
    settled()
    service.capture.refresh()
    lines = [r.getMessage() for r in caplog.records]
    assert f"refresh of {MODEL} works again" in lines
    assert f"capture setting of {MODEL} read again" in lines
