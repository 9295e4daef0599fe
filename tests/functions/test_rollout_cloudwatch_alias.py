"""A rollout read from CloudWatch counts only the requests its alias's split routed: the real
predict handler's EMF (a function serving `name`, one serving `name@staging`, and requests
pinned to a version) put into moto's CloudWatch as CloudWatch Logs would, read back by the
Rollout function's source with GetMetricData. With only [model, version] dimensions, pinned
requests and another alias's counted for the rollout (a rollout went to 100% on them)."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.rollout.cloudwatch import CloudWatchMetrics
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
from tests.emf_to_cloudwatch import put_emf
from tests.functions.test_predict_events import http_event
from tests.rollout_models import publish

ROW = [[0.5, -1.0, 2.0, 0.25]]


@pytest.fixture
def cloudwatch(moto_server: Any) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_server.endpoint)


def send(cloudwatch: Any, service: PredictService, path: str, count: int, row: Any = ROW) -> None:
    out = io.StringIO()
    service.metrics = RequestMetrics(out=out)
    for _ in range(count):
        answer = service.handle(http_event("POST", path, json.dumps({"inputs": row})))
        assert answer["statusCode"] == (200 if row is ROW else 422), answer
    service.metrics.flush()
    put_emf(cloudwatch, out.getvalue().splitlines())


def test_only_the_alias_routed_requests_count(
    s3_store: S3Store, tmp_path: Path, cloudwatch: Any
) -> None:
    model = f"ca{uuid.uuid4().hex[:8]}"  # CloudWatch on the shared server: a model per test
    registry = Registry(s3_store)
    for version in ("1", "2"):
        publish(registry, tmp_path, model, version, "healthy")
    registry.set_alias(model, "production", "1")
    registry.set_alias(model, "staging", "2")
    pool = ModelPool(registry, ArtifactCache(s3_store, tmp_path / "cache"))
    production = PredictService(ServedModel(pool, model, ttl=3600))
    staging = PredictService(ServedModel(pool, f"{model}@staging", ttl=3600))
    since = time.time()
    send(cloudwatch, production, f"/models/{model}/predict", 7)
    send(cloudwatch, production, f"/models/{model}/versions/2/predict", 5)  # pinned: no split
    send(cloudwatch, staging, f"/models/{model}/predict", 3)
    source = CloudWatchMetrics(cloudwatch, latency_stat="Maximum")
    seen = source.measure(model, "1", "2", since, "production")
    assert (seen.baseline.requests, seen.candidate.requests) == (7, 0)
    assert seen.candidate.p99_ms is None
    seen = source.measure(model, "1", "2", since, "staging")
    assert (seen.baseline.requests, seen.candidate.requests) == (0, 3)
    assert seen.candidate.errors == 0 and seen.candidate.p99_ms is not None


def test_each_versions_4xx_are_read_for_the_error_rate(
    s3_store: S3Store, tmp_path: Path, cloudwatch: Any
) -> None:
    """The 4xx per [model, alias, version, status_class] the EMF already carries: the rollout
    compares the candidate's with the baseline's (decision.py `_refused_more`)."""
    model = f"cr{uuid.uuid4().hex[:8]}"
    registry = Registry(s3_store)
    for version in ("1", "2"):
        publish(registry, tmp_path, model, version, "healthy")
    registry.set_alias_weights(model, "production", {"1": 0.5, "2": 0.5})
    pool = ModelPool(registry, ArtifactCache(s3_store, tmp_path / "cache"))
    production = PredictService(ServedModel(pool, model, ttl=3600))
    since = time.time()
    send(cloudwatch, production, f"/models/{model}/predict", 20)
    send(cloudwatch, production, f"/models/{model}/predict", 10, row=[[1.0, 2.0, 3.0]])
    seen = CloudWatchMetrics(cloudwatch, latency_stat="Maximum").measure(
        model, "1", "2", since, "production"
    )
    assert seen.baseline.requests + seen.candidate.requests == 30
    assert seen.baseline.client_errors + seen.candidate.client_errors == 10
    assert seen.baseline.errors == seen.candidate.errors == 0
