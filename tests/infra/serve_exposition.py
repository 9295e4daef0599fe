"""A real `aiaas serve`'s `/metrics`, after traffic shaped like a service's day: two models,
one alias split between two versions, answers, refusals (401, 404, 422) and server errors
(a version whose model file is gone). The observability tests read the names and labels the
shipped rules and dashboard rely on from it (tests/infra/test_observability_*.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
SPLIT, PLAIN = "churn", "fraud"  # churn: production split 1 / 2; fraud: one version
GOOD = orjson.dumps({"inputs": [[0.5, 0.1, 0.2, 0.3]]})
WRONG_SHAPE = orjson.dumps({"inputs": [[0.5] * 3]})


def build_store(root: Path) -> Path:
    """churn 1, 2 (production split 50/50), 3 and 4; fraud 1 (production, captured, shadowed by
    3) and 2 (its model file removed)."""
    store = root / "store"
    registry = Registry(LocalStore(store))
    published = [(SPLIT, str(v)) for v in range(1, 5)] + [(PLAIN, str(v)) for v in range(1, 4)]
    for seed, (name, version) in enumerate(published):
        # Each its own weights: the artifact cache is by content, so no two share a file.
        path = onnx_factory.linear_classifier(root / f"{name}-{version}.onnx", seed=seed)
        manifest = onnx_factory.manifest_for(path, name, version, labels=("a", "b", "c"))
        registry.publish(manifest, path)
    registry.set_alias(SPLIT, "production", "1")
    registry.set_alias_weights(SPLIT, "production", {"1": 0.5, "2": 0.5})
    registry.set_alias(PLAIN, "production", "1")
    registry.set_shadow(PLAIN, "production", "3", 1.0)
    set_capture(registry, PLAIN, sample=1.0, actor="test")
    for broken in (store / "models" / PLAIN / "versions" / "2").rglob("*.onnx"):
        broken.unlink()
    return store


def drive(base: str) -> None:
    """The traffic: each kind of answer a dashboard and the alerts tell apart."""
    with httpx.Client(base_url=base, headers=AUTH, timeout=30) as client:
        # churn 3 then 4, pinned, beside the split's two (warmed): 4 evicts 3 (MAX_VERSIONS 2).
        for pinned in ("3", "4"):
            answer = client.post(f"/models/{SPLIT}/versions/{pinned}/predict", content=GOOD)
            assert answer.is_success, answer.text
        for i in range(12):  # a fresh key each time spreads them over the split
            key = {"x-aiaas-routing-key": f"caller-{i}"}
            assert client.post(f"/models/{SPLIT}/predict", content=GOOD, headers=key).is_success
        for model in (SPLIT, PLAIN):
            assert client.post(f"/models/{model}/predict", content=WRONG_SHAPE).status_code == 422
            assert client.post(f"/models/{PLAIN}/predict", content=GOOD).status_code == 200
        broken = client.post(f"/models/{PLAIN}/versions/2/predict", content=GOOD)
        assert broken.status_code >= 500, broken.text
        assert client.post(f"/models/{PLAIN}/versions/77/predict", content=GOOD).status_code == 404
        assert client.get("/no/such/route/ab12").status_code == 404
    assert httpx.post(f"{base}/models/{PLAIN}/predict", content=GOOD).status_code == 401


def served_exposition(root: Path, *args: str) -> Iterator[tuple[str, str]]:
    """(base URL, `/metrics` text) of a started server after `drive`; stopped afterwards."""
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_MAX_VERSIONS": "2"}
    for server in start_serve(build_store(root), *args, env=env, headers=AUTH):
        drive(server.base)
        yield server.base, scrape_when_replayed(server.base)


def scrape_when_replayed(base: str, timeout: float = 10.0) -> str:
    """`/metrics` once the shadow's replay process has counted its copies (it runs apart)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10)
        assert answer.status_code == 200, answer.text
        if "aiaas_shadow_requests_total{" in answer.text or time.monotonic() > deadline:
            return answer.text
        time.sleep(0.1)
