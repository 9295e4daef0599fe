"""When the shadow copy is made: after the response is handed over where the host has such a
moment (`aiaas serve`: `later`, the context's `after_response`), before the handler returns
where it has none (Lambda). Either way the same line; a copy that fails is a counted drop and
never changes the caller's answer. Through a real granian server: tests/infra/test_serve_after.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from functions.predict.shadow import CopySink, LogSink
from functions.predict.shadow_copy import decode
from functions.predict.shadow_tally import ShadowLabels
from functions.predict.telemetry import RequestMetrics
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.served import ServedModel
from infra.local.metrics import GatewayMetrics
from tests.functions.test_predict_events import http_event
from tests.functions.test_predict_shadow import PREDICT, prometheus, registry_with

BODY = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]]})
INFER = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
)


class FailingSink:
    """A sink that raises, as a broken one would (fault injection: no real sink fails so)."""

    def send(self, labels: ShadowLabels, line: bytes) -> bool:
        raise OSError("the sink broke")

    def drain(self, timeout: float) -> bool:
        return True


def service_with(tmp_path: Path, sink: CopySink) -> tuple[PredictService, GatewayMetrics]:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    metrics = RequestMetrics(out=io.StringIO())
    gateway = GatewayMetrics()
    metrics.observe(gateway)
    service = PredictService(ServedModel(pool, "m", ttl=3600), metrics=metrics, shadow_sink=sink)
    return service, gateway


@pytest.mark.parametrize("path, body", [(PREDICT, BODY), ("/v2/models/m/infer", INFER)])
def test_with_a_later_no_copy_is_made_until_the_host_runs_it(
    tmp_path: Path, path: str, body: str
) -> None:
    out = io.StringIO()
    service, _ = service_with(tmp_path, LogSink(out))
    jobs: list[Callable[[], None]] = []
    response = service.handle(http_event("POST", path, body), jobs.append)
    assert response["statusCode"] == 200, response["body"]
    assert out.getvalue() == "" and len(jobs) == 1  # the response is complete; no copy yet
    jobs[0]()
    copy = decode(out.getvalue())
    assert (copy.version, copy.shadow_version, copy.body) == ("1", "2", body.encode())
    if path == PREDICT:
        assert copy.answer == json.loads(response["body"])  # the answer the caller got


def test_the_deferred_copy_is_the_line_lambda_prints_before_returning(tmp_path: Path) -> None:
    now, deferred = io.StringIO(), io.StringIO()
    service, _ = service_with(tmp_path, LogSink(now))
    event = http_event("POST", PREDICT, BODY)
    service.handle(event)  # Lambda: no later, the line is printed before handle returns
    service.shadow.sink = LogSink(deferred)
    jobs: list[Callable[[], None]] = []
    service.handle(event, jobs.append)
    jobs[0]()
    first, second = decode(now.getvalue()), decode(deferred.getvalue())
    assert first.time_ms <= second.time_ms
    assert (first.body, first.answer, first.request_id) == (
        second.body,
        second.answer,
        second.request_id,
    )


@pytest.mark.parametrize("deferred", [False, True], ids=["lambda", "serve"])
@pytest.mark.parametrize("path, body", [(PREDICT, BODY), ("/v2/models/m/infer", INFER)])
def test_a_copy_that_fails_is_a_drop_and_the_caller_is_answered(
    tmp_path: Path, deferred: bool, path: str, body: str
) -> None:
    service, gateway = service_with(tmp_path, FailingSink())
    jobs: list[Callable[[], None]] = []
    response = service.handle(http_event("POST", path, body), jobs.append if deferred else None)
    assert response["statusCode"] == 200, response["body"]
    for job in jobs:
        job()  # the host's after: it does not raise either
    assert prometheus(gateway, m.SHADOW_DROPPED) == 1
