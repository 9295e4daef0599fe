"""`/metrics` of a real `aiaas serve` of many models: what each model touched once adds stays
bounded, and the exposition stays Prometheus' own text format. Every model a server loaded had
two bucketed load histograms (`aiaas_model_load_seconds`, 14 buckets, beside
`aiaas_model_load_duration_seconds`): 401 models called once made a 2.5 MB scrape of 22,923
lines, ~6.2 KB a model, 3.0 KB of it before any request (hunt_scale finding 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

MODELS = [f"m{i}" for i in range(50)]
ROW = {"inputs": [[0.5, -1.0, 2.0, 0.25]]}
# Measured with 50 models, one worker: 2,056 bytes a model loaded (3,044 with two load
# histograms), 5,196 once called (6,184), of which the request histogram is 2.7 KB.
LOADED_BYTES, CALLED_BYTES = 2_400, 5_600


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    yield from start_serve(published(tmp_path_factory.mktemp("many_metrics"), MODELS))


def published(root: Path, names: list[str]) -> Path:
    """A directory store under `root` of `names`, each a tiny linear classifier."""
    registry = Registry(LocalStore(root / "store"))
    for seed, name in enumerate(names):
        path = onnx_factory.linear_classifier(root / f"{name}.onnx", seed=seed)
        registry.publish(onnx_factory.manifest_for(path, name, "1"), path)
    return root / "store"


def scrape(base: str) -> str:
    answer = httpx.get(f"{base}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_what_each_model_adds_to_metrics_stays_bounded(server: ServeProcess) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for name in MODELS:  # a model's first call waits for its warm-up load if need be
            assert client.post(f"/models/{name}/predict", json=ROW).status_code == 200
    # Every model loaded once (the warm-up's) and called once.
    text = scrape(server.base)
    assert len(text) <= CALLED_BYTES * len(MODELS), len(text) / len(MODELS)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    loads = [s for s in families["aiaas_model_loads"].samples if s.name.endswith("_total")]
    assert sum(s.value for s in loads) == len(MODELS)
    cold = families["aiaas_model_load_seconds"]
    assert cold.type == "summary"  # count and sum: the time of each model's cold start
    assert {s.name for s in cold.samples} == {f"{cold.name}_count", f"{cold.name}_sum"}
    assert sum(s.value for s in cold.samples if s.name.endswith("_count")) == len(MODELS)
    timed = families["aiaas_model_load_duration_seconds"]  # the loads' distribution
    assert timed.type == "histogram"
    assert any(s.name.endswith("_bucket") for s in timed.samples)


def test_a_model_loaded_but_never_called_adds_little(tmp_path: Path) -> None:
    for server in start_serve(published(tmp_path, MODELS[:20])):
        with httpx.Client(base_url=server.base, timeout=30) as client:
            # the warm-up's loads: each model's first call waits for it (this one's only)
            assert client.post(f"/models/{MODELS[0]}/predict", json=ROW).status_code == 200
            for _ in range(100):
                text = scrape(server.base)
                loads = [
                    s
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name == "aiaas_model_loads_total"
                ]
                if sum(s.value for s in loads) == 20:
                    break
                time.sleep(0.1)
        assert sum(s.value for s in loads) == 20, text
        assert len(text) <= LOADED_BYTES * 20 + CALLED_BYTES, len(text)
