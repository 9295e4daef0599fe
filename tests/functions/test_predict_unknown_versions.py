"""Pinned predict requests for versions never published, through the predict service on real
stores: the names a caller sends hold no memory past a bound (each one's 404 remembered
stamped its manifest, and the directory store kept every key it stamped), and a version
published, or loaded through an alias, while its 404 is being read is served on the next
request, not answered 404 for a whole TTL."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

import functions.runtime
from functions.predict.service import PredictService, service_from_env
from functions.runtime.errors import NotFound
from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory

from .test_predict_events import http_event

MODEL = "iris"
TTL = 600.0  # an answer within it comes from the manifest's stamp or the pool, not the clock
NAMES = 10_000  # distinct never-published versions a scanner sends
RUNTIME = str(Path(functions.runtime.__file__).parent / "*")


def _service(store: ObjectStore, cache_dir: Path) -> PredictService:
    return service_from_env(
        {
            "AIAAS_STORE": store.uri,
            "AIAAS_CACHE_DIR": str(cache_dir),
            "AIAAS_MODEL": MODEL,
            "AIAAS_ALIAS_TTL": str(TTL),
            "AIAAS_DISABLE_METRICS": "1",
            "AIAAS_DRIFT_FLUSH_SECONDS": "0",
        }
    )


def _predict(service: PredictService, version: str) -> int:
    path = f"/models/{MODEL}/versions/{version}/predict"
    return int(service.handle(http_event("POST", path, '{"inputs": [[1, 2, 3, 4]]}'))["statusCode"])


def _publish(store: ObjectStore, tmp_path: Path, version: str) -> None:
    path = onnx_factory.linear_classifier(tmp_path / f"{version}.onnx", seed=int(version))
    Registry(store).publish(onnx_factory.manifest_for(path, MODEL, version), path)


def _after_missing_read(
    monkeypatch: pytest.MonkeyPatch, store: ObjectStore, version: str, then: Callable[[], None]
) -> None:
    """Run `then` once, right after `version`'s manifest is read and found missing: between
    the read and the 404 being remembered (the window of a publish from another process)."""
    read, key = type(store).get_bytes, manifest_key(MODEL, version)
    done: list[str] = []

    def get_bytes(self: ObjectStore, wanted: str) -> bytes:
        try:
            return read(self, wanted)
        except NotFound:
            if wanted == key and not done:
                done.append(wanted)
                then()
            raise

    monkeypatch.setattr(type(store), "get_bytes", get_bytes)


def test_version_names_a_caller_sends_hold_no_memory_past_a_bound(
    local_store: LocalStore, tmp_path: Path
) -> None:
    """The directory store kept the path and stamp of every key it stamped, for the life of
    the server: ~400 bytes a version name sent (4 MB for these 10,000, 0.4 GB a million).
    The runtime's allocations only: the predict routes' own match cache is bounded apart."""
    _publish(local_store, tmp_path, "1")
    service = _service(local_store, tmp_path / "cache")
    assert _predict(service, "1") == 200
    runtime = [tracemalloc.Filter(True, RUNTIME)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(runtime)
        for i in range(NAMES):
            assert _predict(service, f"scan-{i}") == 404
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(runtime)
    finally:
        tracemalloc.stop()
    grew = after.compare_to(before, "lineno")
    assert sum(stat.size_diff for stat in grew) < 2_000_000, [str(stat) for stat in grew[:3]]
    assert _predict(service, "1") == 200


def test_a_version_published_while_its_404_is_read_is_served_next(
    local_store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 404's stamp was taken after the manifest read: the manifest written in between was
    stamped as the one found missing, and the version answered 404 for the whole TTL."""
    _publish(local_store, tmp_path, "1")
    service = _service(local_store, tmp_path / "cache")
    other = LocalStore(local_store.root)  # another process publishing (CI)
    _after_missing_read(monkeypatch, local_store, "2", lambda: _publish(other, tmp_path, "2"))
    assert _predict(service, "2") == 404  # read before the publish
    assert _predict(service, "2") == 200


def test_a_version_loaded_while_its_404_is_read_is_served_next(
    store: ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An alias moved onto the version loads it; the 404 remembered meanwhile was checked
    before the loaded versions, so the loaded version answered 404 until the TTL (on S3 the
    stamp cannot tell: only the pool can)."""
    _publish(store, tmp_path, "1")
    service = _service(store, tmp_path / "cache")
    pool = service.served.pool

    def published_and_loaded() -> None:
        _publish(store, tmp_path, "2")
        pool.load(pool.registry.manifest(MODEL, "2"))  # what an alias moved onto it does

    _after_missing_read(monkeypatch, store, "2", published_and_loaded)
    assert _predict(service, "2") == 404  # read before the publish
    assert _predict(service, "2") == 200
