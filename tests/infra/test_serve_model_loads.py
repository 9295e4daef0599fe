"""A real `aiaas serve`'s `/metrics` counts every model load, with its model, version and
outcome: the cold start's, pinned versions', a version loaded again after an eviction
(`AIAAS_MAX_VERSIONS`), a canary warmed off the request path after its alias split, and a
version that exists but cannot load. Before, only each worker's first load was counted, and
the failed one only as a 5xx under `version="-"`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_serve import TOKEN, start_serve
from tests.publishing import publish_linear

AUTH = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
GOOD = orjson.dumps({"inputs": [[0.5, 0.1, 0.2, 0.3]]})
LOADS = "aiaas_model_loads_total"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """m:1..5, `production` on m:1; m:5's model file removed (published, cannot load)."""
    root = tmp_path_factory.mktemp("loads")
    registry = Registry(LocalStore(root / "store"))
    for version in range(1, 6):
        publish_linear(registry, root, "m", str(version), seed=version)
    registry.set_alias("m", "production", "1")
    for onnx in (root / "store" / "models" / "m" / "versions" / "5").rglob("*.onnx"):
        onnx.unlink()
    return registry


@pytest.fixture(scope="module")
def base(registry: Registry) -> Iterator[str]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_MAX_VERSIONS": "2"}
    store = Path(registry.store.uri.removeprefix("file://"))
    for server in start_serve(store, env=env, headers=AUTH):
        # Ready (/v2/health/ready) is the health function's answer: the warm-up loads the
        # model after it, off the request path (gateway.warm_up), so a scrape this early found
        # no load yet (flaky under load). A request to the model waits for that load, which
        # is counted by then; it loads nothing more.
        answer = httpx.get(f"{server.base}/v2/models/m/ready", headers=AUTH, timeout=30)
        assert answer.status_code == 200, answer.text
        yield server.base


def loads(base: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(version, outcome): (count, its duration histogram's count) for model m."""
    text = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10).text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    found: dict[tuple[str, str], tuple[float, float]] = {}
    for s in samples:
        if s.name in (LOADS, "aiaas_model_load_duration_seconds_count"):
            assert s.labels["model"] == "m", s
            key = (s.labels["version"], s.labels["outcome"])
            count, timed = found.get(key, (0.0, 0.0))
            found[key] = (s.value, timed) if s.name == LOADS else (count, s.value)
    return found


def test_canary_pinned_reloaded_and_failed_loads_are_each_counted(
    registry: Registry, base: str
) -> None:
    assert loads(base) == {("1", "loaded"): (1, 1)}  # the cold start
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        # pinned: 3, then 4 (evicts 3: two versions at most), then 3 again (loaded again soon
        # after its eviction: outcome "reloaded", the pool churning a version in use)
        for version in ("3", "4", "3"):
            answer = client.post(f"/models/m/versions/{version}/predict", content=GOOD)
            assert answer.status_code == 200, answer.text
        broken = client.post("/models/m/versions/5/predict", content=GOOD)
        assert broken.status_code == 503, broken.text
        assert "m:5" in broken.json()["error"]
        # The alias splits: the next request sees it (the directory store's watch) and the new
        # canary, 2, is loaded off the request path (functions/runtime/warming.py).
        registry.set_alias_weights("m", "production", {"1": 0.5, "2": 0.5})
        assert client.post("/models/m/predict", content=GOOD).status_code == 200
        deadline = time.monotonic() + 10
        while ("2", "loaded") not in loads(base) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert loads(base) == {
        ("1", "loaded"): (1, 1),
        ("3", "loaded"): (1, 1),
        ("3", "reloaded"): (1, 1),
        ("4", "loaded"): (1, 1),
        ("5", "failed"): (1, 1),
        ("2", "loaded"): (1, 1),
    }
