"""Every load of a version by the model pool counted as `aiaas_model_loads_total` and timed as
`aiaas_model_load_duration_seconds`, by model, version and outcome, in the predict function's
EMF and on its observer (`aiaas serve`'s `/metrics`): the cold start's, a pinned version's, a
failed one's, one loaded again after an eviction; a request that loads nothing reports none.
Before, only a worker's first load was counted (`aiaas_cold_starts_total`)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from functions.predict.metric_names import LOAD_DURATION, MODEL_LOADS
from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from infra.local.metrics import GatewayMetrics
from tests.functions.test_predict_events import http_event
from tests.publishing import publish_linear
from tests.runtime.test_pool_capacity import pool_of

BODY = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]})


@pytest.fixture(scope="module")
def broken_four(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """m:1..4, the alias `production` on m:1; m:4's model file removed (it cannot load)."""
    root = tmp_path_factory.mktemp("loads")
    registry = Registry(LocalStore(root / "store"))
    for version in range(1, 5):
        publish_linear(registry, root, "m", str(version), seed=version)
    registry.set_alias("m", "production", "1")
    for onnx in (root / "store" / "models" / "m" / "versions" / "4").rglob("*.onnx"):
        onnx.unlink()
    return registry


def test_every_load_is_counted_and_timed_by_outcome_in_emf_and_on_metrics(
    broken_four: Registry, tmp_path: Path
) -> None:
    out = io.StringIO()
    metrics = RequestMetrics(out=out)
    pool = pool_of(broken_four, tmp_path, AIAAS_MAX_VERSIONS="2")
    svc = PredictService(ServedModel(pool, "m@production", ttl=3600), metrics=metrics)
    svc.warm()  # the cold start: m:1, before `aiaas serve` attaches its observer
    gateway = GatewayMetrics()
    metrics.observe(gateway)
    statuses = []
    # 2 loads; 2 again loads nothing; 4 cannot load (a 5xx); 3 loads; 2 loads again (evicted
    # by now: by 4's attempt, which makes room before it fetches, or by 3: "reloaded", soon
    # after its eviction).
    for version in ("2", "2", "4", "3", "2"):
        event = http_event("POST", f"/models/m/versions/{version}/predict", BODY)
        statuses.append(svc.handle(event)["statusCode"])
    assert statuses == [200, 200, 503, 200, 200]
    assert pool.evictions >= 1
    expected = [("1", "loaded"), ("2", "loaded"), ("4", "failed"), ("3", "loaded"),
                ("2", "reloaded")]  # fmt: skip
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    loads = [doc for doc in docs if MODEL_LOADS in doc]
    assert [(d["model"], d["version"], d["outcome"], d[MODEL_LOADS]) for d in loads] == [
        ("m", version, outcome, 1) for version, outcome in expected
    ]
    assert all(0 < doc[LOAD_DURATION] < 30 for doc in loads)
    emf = loads[0]["_aws"]["CloudWatchMetrics"][0]
    assert emf["Dimensions"] == [["model", "version", "outcome"]]
    assert emf["Metrics"] == [
        {"Name": MODEL_LOADS, "Unit": "Count"},
        {"Name": LOAD_DURATION, "Unit": "Seconds"},
    ]
    samples = [
        s for f in text_string_to_metric_families(gateway.render()[0].decode()) for s in f.samples
    ]
    counted = {(s.labels["version"], s.labels["outcome"]): s.value
               for s in samples if s.name == MODEL_LOADS}  # fmt: skip
    assert counted == {("1", "loaded"): 1, ("2", "loaded"): 1, ("2", "reloaded"): 1,
                       ("3", "loaded"): 1, ("4", "failed"): 1}  # fmt: skip
    timed = {(s.labels["version"], s.labels["outcome"]): s.value
             for s in samples if s.name == f"{LOAD_DURATION}_count"}  # fmt: skip
    assert timed == counted
    top = [s for s in samples if s.name == f"{LOAD_DURATION}_bucket" and s.labels["le"] == "600.0"]
    assert sum(s.value for s in top) == 5  # the bounds reach minutes (a large model from S3)


def test_a_request_that_loads_nothing_reports_no_load(
    broken_four: Registry, tmp_path: Path
) -> None:
    out = io.StringIO()
    svc = PredictService(
        ServedModel(pool_of(broken_four, tmp_path), "m@production", ttl=3600),
        metrics=RequestMetrics(out=out),
    )
    svc.warm()
    loads_before = out.getvalue().count(MODEL_LOADS)
    for _ in range(20):
        assert svc.handle(http_event("POST", "/models/m/predict", BODY))["statusCode"] == 200
    assert loads_before == 2  # the one load's document names the metric twice (its directive)
    assert out.getvalue().count(MODEL_LOADS) == loads_before
