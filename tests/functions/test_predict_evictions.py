"""The model pool's evictions (functions/runtime/pool.py) counted as `aiaas_model_evictions_total`
per model: in the predict function's EMF and on `aiaas serve`'s `/metrics` (its observer), one
per version evicted and nothing for a request that evicts none. A WARNING line each was all an
operator had; a pool that thrashes (a reload on nearly every request) had no metric to alarm on."""

from __future__ import annotations

import io
import json
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from functions.predict.metric_names import EVICTIONS
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from infra.local.metrics import GatewayMetrics
from tests.functions.test_predict_events import http_event
from tests.runtime.test_pool_capacity import pool_of, six

__all__ = ["six"]  # the fixture: m:1..6, the alias `production` on m:1
BODY = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]})


def test_each_eviction_is_counted_per_model_in_emf_and_on_metrics(
    six: Registry, tmp_path: Path
) -> None:
    out, gateway = io.StringIO(), GatewayMetrics()
    metrics = RequestMetrics(out=out)
    metrics.observe(gateway)
    pool = pool_of(six, tmp_path, AIAAS_MAX_VERSIONS="2")
    svc = PredictService(ServedModel(pool, "m@production", ttl=3600), metrics=metrics)
    svc.warm()  # loads the alias's m:1: a pinned request no longer loads it first
    # m:1 is the alias's (never evicted); 3 evicts 2, then 2 evicts 3; the rest are loaded.
    for version in ("2", "2", "3", "3", "2", "2", "2", "1"):
        event = http_event("POST", f"/models/m/versions/{version}/predict", BODY)
        assert svc.handle(event)["statusCode"] == 200
    assert pool.evictions == 2
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    evicted = [doc for doc in docs if EVICTIONS in doc]
    assert [(doc["model"], doc[EVICTIONS]) for doc in evicted] == [("m", 1), ("m", 1)]
    emf = evicted[0]["_aws"]["CloudWatchMetrics"][0]
    assert emf["Dimensions"] == [["model"]]
    assert emf["Metrics"] == [{"Name": EVICTIONS, "Unit": "Count"}]
    text = gateway.render()[0].decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert [(s.name, s.labels, s.value) for s in samples if s.name == EVICTIONS] == [
        (EVICTIONS, {"model": "m"}, 2.0)
    ]
