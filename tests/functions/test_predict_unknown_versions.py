"""Pinned predict requests for versions never published, through the predict service on real
stores: the names a caller sends hold no memory past a bound (each one's 404 remembered
stamped its manifest, and the directory store kept every key it stamped)."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import functions.runtime
from functions.predict.service import PredictService, service_from_env
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
