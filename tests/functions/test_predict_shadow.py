"""Shadow traffic through the real predict handler (API Gateway HTTP API v2.0 events): the
caller is answered by the alias's version only, every sampled request is replayed to the shadow
afterwards, and the agreement recorded (as EMF and as Prometheus families) equals an offline
comparison of the same inputs run through onnxruntime directly."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from functions.predict.shadow import ShadowRunner
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool, ServedModel
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.metrics import GatewayMetrics
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event
from tests.publishing import publish_linear

N = 400
PREDICT = "/models/m/predict"


def serve(registry: Registry, tmp_path: Path) -> tuple[PredictService, io.StringIO, GatewayMetrics]:
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    out = io.StringIO()
    metrics = RequestMetrics(out=out)
    gateway = GatewayMetrics()
    metrics.observe(gateway)
    service = PredictService(ServedModel(pool, "m", ttl=3600), metrics=metrics)
    # Room for every copy: a tight loop of callers outruns the one worker (by design the
    # copies past QUEUE_SIZE are dropped; see test_a_full_queue_drops...), and the comparison
    # with the offline run needs all of them.
    service.shadow = ShadowRunner(service.plane, metrics, capacity=N)
    return service, out, gateway


def registry_with(tmp_path: Path, labels: tuple[str, ...]) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version), labels=labels)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    return registry


def requests() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.normal(size=(int(rng.integers(1, 4)), 4)).astype(np.float32) for _ in range(N)]


def send_all(service: PredictService, rows: list[np.ndarray]) -> None:
    for x in rows:
        response = service.handle(http_event("POST", PREDICT, json.dumps({"inputs": x.tolist()})))
        assert response["statusCode"] == 200, response["body"]
        assert response["headers"]["x-aiaas-version"] == "1"  # the shadow never answers
        assert body_of(response)["version"] == "1"
    assert service.shadow.drain(30)


def offline(registry: Registry, tmp_path: Path, rows: list[np.ndarray]) -> list[np.ndarray]:
    """Each version's logits for every request, straight from onnxruntime."""
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "offline"))
    answers = []
    for version in ("1", "2"):
        session = ort.InferenceSession(str(pool.load_version("m", version).path))
        answers.append(np.concatenate([session.run(None, {"x": x})[0] for x in rows]))
    return answers


def shadow_docs(out: io.StringIO) -> list[dict[str, Any]]:
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    return [d for d in docs if d.get("shadow_version") == "2"]


def prometheus(gateway: GatewayMetrics, name: str) -> float:
    text = gateway.render()[0].decode()
    labels = '{model="m",shadow_version="2",version="1"}'
    (line,) = [x for x in text.splitlines() if x.startswith(name + labels)]
    return float(line.split()[-1])


def test_agreement_equals_an_offline_comparison_of_the_same_requests(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, out, gateway = serve(registry, tmp_path)
    rows = requests()
    send_all(service, rows)
    served, shadow = offline(registry, tmp_path, rows)
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    assert 0 < agreed < len(served)  # two different models: some rows agree, some do not
    docs = shadow_docs(out)
    assert len(docs) == N and all(d[m.SHADOW_REQUESTS] == 1 for d in docs)
    assert sum(d[m.SHADOW_ROWS] for d in docs) == len(served)
    assert sum(d[m.SHADOW_AGREED] for d in docs) == agreed
    assert prometheus(gateway, m.SHADOW_AGREED) == agreed
    assert prometheus(gateway, m.SHADOW_ROWS) == len(served)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == N
    assert prometheus(gateway, m.SHADOW_LATENCY + "_count") == N


def test_regressor_differences_equal_an_offline_comparison(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ())
    service, out, gateway = serve(registry, tmp_path)
    rows = requests()
    send_all(service, rows)
    served, shadow = offline(registry, tmp_path, rows)
    diff = np.abs(served.astype(np.float64) - shadow.astype(np.float64))
    rel = diff / np.maximum(np.abs(served.astype(np.float64)), 1e-12)
    docs = shadow_docs(out)
    assert len(docs) == N and all(m.SHADOW_AGREED not in d for d in docs)
    assert max(d[m.SHADOW_MAX_ABS] for d in docs) == pytest.approx(diff.max(), rel=1e-12)
    assert max(d[m.SHADOW_MAX_REL] for d in docs) == pytest.approx(rel.max(), rel=1e-12)
    assert prometheus(gateway, m.SHADOW_MAX_ABS) == pytest.approx(diff.max(), rel=1e-12)


def test_a_shadow_that_cannot_answer_comparably_counts_errors_and_callers_never_see_it(
    tmp_path: Path,
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    publish_linear(registry, tmp_path, "m", "1", seed=1, labels=("a", "b", "c"))
    other = onnx_factory.identity(tmp_path / "identity.onnx", shape=["N", 4])
    registry.publish(onnx_factory.manifest_for(other, "m", "2"), other)
    registry.set_alias("m", "production", "1")
    registry.set_shadow("m", "production", "2", 1.0)
    service, out, gateway = serve(registry, tmp_path)
    send_all(service, requests()[:20])
    docs = shadow_docs(out)
    assert len(docs) == 20 and all(d[m.SHADOW_ERRORS] == 1 for d in docs)
    assert prometheus(gateway, m.SHADOW_ERRORS) == 20


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, out, gateway = serve(registry, tmp_path)
    runner = service.shadow = ShadowRunner(service.plane, service.metrics, capacity=1)
    release, busy = threading.Event(), threading.Event()
    replay = runner._replay

    def held(*copy: Any) -> None:  # the worker is busy with the first copy until released
        busy.set()
        release.wait(30)
        replay(*copy)

    runner._replay = held  # type: ignore[method-assign]
    ok = '{"inputs": [[1, 2, 3, 4]]}'
    assert service.handle(http_event("POST", PREDICT, ok))["statusCode"] == 200
    assert busy.wait(30)  # copy 1 is being replayed; copy 2 fills the queue; 3-6 are dropped
    for _ in range(5):
        assert service.handle(http_event("POST", PREDICT, ok))["statusCode"] == 200
    assert prometheus(gateway, m.SHADOW_DROPPED) == 4
    release.set()
    assert runner.drain(30)
    docs = shadow_docs(out)
    assert sum(d.get(m.SHADOW_REQUESTS, 0) for d in docs) == 2
    assert sum(d.get(m.SHADOW_DROPPED, 0) for d in docs) == 4
