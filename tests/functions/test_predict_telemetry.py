"""The predict function's EMF metrics and request logs: every sample written, none lost across
an idle gap, 4xx counted under the version that answered, log lines without bodies."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.predict.metric_names import COLD_STARTS, LATENCY, MODEL_LOAD, REQUESTS
from functions.predict.telemetry import EMF_MAX_VALUES, RequestMetrics, logger
from functions.runtime.errors import AiaasError
from infra.local.lambda_logs import LambdaJsonFormatter
from tests.functions.test_predict_events import MODEL, digits_service, http_event, publish_digits

ROUTE = "POST /models/{name}/predict"
EPOCH = 1_800_000_000.0
EPOCH_MS = 1_800_000_000_000


class FrozenClock:
    """monotonic and wall time that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now


def frozen_metrics(clock: FrozenClock, out: io.StringIO) -> RequestMetrics:
    return RequestMetrics("aiaas", clock=clock.monotonic, wall=clock.wall, out=out)


def documents(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def samples(out: io.StringIO) -> list[tuple[int, float]]:
    """(timestamp ms, latency) of every latency sample written, in order."""
    return [(d["_aws"]["Timestamp"], v) for d in documents(out) for v in d.get(LATENCY, [])]


def test_no_latency_sample_is_lost_across_an_idle_gap() -> None:
    clock, out = FrozenClock(), io.StringIO()
    metrics = frozen_metrics(clock, out)
    metrics.record(MODEL, "1", ROUTE, 200, 0.001)  # the first request after idleness: at once
    assert samples(out) == [(int((EPOCH + 100.0) * 1000), 0.001)]
    for i in range(1, 4):  # a burst: held, at most FLUSH_SECONDS
        clock.now += 0.1
        metrics.record(MODEL, "1", ROUTE, 200, 0.001 * (i + 1))
    assert len(samples(out)) == 1
    clock.now += 60.0  # the container idles (frozen); a request comes a minute later
    late_stamp = int(clock.wall() * 1000)
    metrics.record(MODEL, "1", ROUTE, 200, 0.009)
    written = samples(out)
    assert [v for _, v in written] == [0.001, 0.002, 0.003, 0.004, 0.009]
    # The burst keeps the time its window began; the late request has its own.
    burst_stamp = int((EPOCH + 100.0) * 1000)
    assert [t for t, _ in written[1:4]] == [burst_stamp] * 3
    assert written[4][0] == late_stamp
    assert sum(d[REQUESTS] for d in documents(out)) == 5


def test_a_steady_stream_is_written_about_every_second() -> None:
    clock, out = FrozenClock(), io.StringIO()
    metrics = frozen_metrics(clock, out)
    for _ in range(250):  # 250 requests, 10 ms apart: 2.5 s
        metrics.record(MODEL, "1", ROUTE, 200, 0.0005)
        clock.now += 0.01
    docs = documents(out)
    # The first request at once, then a window a second: all but the last half second written.
    assert sorted({d["_aws"]["Timestamp"] for d in docs}) == [
        EPOCH_MS + 100_000,
        EPOCH_MS + 101_000,
    ]
    assert sum(d[REQUESTS] for d in docs) == 201
    assert all(len(d[LATENCY]) <= EMF_MAX_VALUES for d in docs)
    metrics.flush()
    assert sum(d[REQUESTS] for d in documents(out)) == 250


def test_documents_are_emf_with_the_prometheus_names_and_labels() -> None:
    clock, out = FrozenClock(), io.StringIO()
    metrics = frozen_metrics(clock, out)
    metrics.cold_start(MODEL, "1", 0.25)
    metrics.record(MODEL, "1", ROUTE, 422, 0.002, "production")
    load, request = documents(out)
    directive = load["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["model", "version"]]
    assert {m["Name"] for m in directive["Metrics"]} == {COLD_STARTS, MODEL_LOAD}
    assert (load[COLD_STARTS], load[MODEL_LOAD]) == (1, 0.25)
    directive = request["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "aiaas"
    assert directive["Dimensions"] == [
        ["model", "alias", "version"],  # a rollout's counts and p99: its alias's split alone
        ["model", "alias", "version", "status_class"],  # ... and its error rate
        ["model", "status_class"],  # the code deploy's 5xx alarm
    ]  # no [model, version, route, status_class, alias]: 2 billed metrics a route and class
    assert directive["Metrics"] == [
        {"Name": REQUESTS, "Unit": "Count"},
        {"Name": LATENCY, "Unit": "Seconds"},
    ]
    labels = {k: request[k] for k in ("model", "version", "route", "status_class", "alias")}
    assert labels == {
        "model": MODEL,
        "version": "1",
        "route": ROUTE,
        "status_class": "4xx",
        "alias": "production",
    }
    assert (request[REQUESTS], request[LATENCY]) == (1, [0.002])


def test_the_per_route_dimension_set_is_opt_in() -> None:
    """Each route and status class a version serves was 2 more billed custom metrics that
    nothing read: written with AIAAS_METRICS_BY_ROUTE only."""
    assert RequestMetrics.from_env({}).by_route is False
    assert RequestMetrics.from_env({"AIAAS_METRICS_BY_ROUTE": "true"}).by_route is True
    for by_route in (False, True):
        out, clock = io.StringIO(), FrozenClock()
        metrics = RequestMetrics(by_route=by_route, clock=clock.monotonic, wall=clock.wall, out=out)
        metrics.record(MODEL, "1", ROUTE, 200, 0.001)
        (doc,) = documents(out)
        dimensions = doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert (["model", "version", "route", "status_class", "alias"] in dimensions) is by_route
        assert len(dimensions) == 3 + by_route
        assert doc["route"] == ROUTE  # still in the line, for Logs Insights


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The function's log lines at INFO, as Lambda (`LogFormat: JSON`) and `aiaas serve` write
    them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LambdaJsonFormatter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("telemetry")
    publish_digits(root)
    return root


def test_every_status_class_is_counted_under_the_version_that_answered(
    root: Path, log_lines: io.StringIO
) -> None:
    service = digits_service(root)
    clock, out = FrozenClock(), io.StringIO()
    service.metrics = frozen_metrics(clock, out)
    ok = orjson.dumps({"inputs": [[0.5] * 64]})
    sent = [
        ("/models/digits-mlp/predict", ok, 200),
        ("/models/digits-mlp/predict", orjson.dumps({"inputs": [[0.5] * 3]}), 422),
        ("/models/digits-mlp/predict", b"{not json", 400),
        ("/models/digits-mlp/versions/1/predict", orjson.dumps({"inputs": [[1] * 3]}), 422),
        ("/models/digits-mlp/versions/77/predict", ok, 404),  # never resolved: not a label
        ("/models/digits-mlp/versions/1/predict", ok, 200),
    ]
    for path, body, status in sent:
        answer = service.handle(http_event("POST", path, body))
        assert answer["statusCode"] == status, answer["body"]
    service.metrics.flush()
    counted = {(d["version"], d["route"], d["status_class"]): d[REQUESTS] for d in documents(out)}
    pinned = "POST /models/{name}/versions/{version}/predict"
    assert counted == {
        ("1", ROUTE, "2xx"): 1,
        ("1", ROUTE, "4xx"): 2,
        ("1", pinned, "4xx"): 1,
        ("-", pinned, "4xx"): 1,
        ("1", pinned, "2xx"): 1,
    }
    assert '"message":"request"' not in log_lines.getvalue()  # request logs are off by default


def test_request_log_lines_name_model_version_route_status_and_id(
    root: Path, log_lines: io.StringIO
) -> None:
    service = digits_service(root, AIAAS_LOG_REQUESTS="1", AIAAS_DISABLE_METRICS="1")
    secret = 0.123456789
    event = http_event(
        "POST", "/models/digits-mlp/predict", orjson.dumps({"inputs": [[secret] * 3]})
    )
    event["requestContext"]["requestId"] = "req-42"
    assert service.handle(event)["statusCode"] == 422
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (line,) = [entry for entry in lines if entry.get("message") == "request"]
    assert {k: line[k] for k in ("model", "version", "route", "status", "request_id")} == {
        "model": MODEL,
        "version": "1",
        "route": ROUTE,
        "status": 422,
        "request_id": "req-42",
    }
    assert line["ms"] > 0
    assert str(secret) not in json.dumps(lines)  # never the body


def test_a_body_the_function_refuses_with_413_is_logged_with_its_route_and_id(
    root: Path, log_lines: io.StringIO
) -> None:
    """The body limit is checked while the event is parsed, before the route and request id
    were read: its line said route '-' and request_id ''."""
    service = digits_service(
        root, AIAAS_LOG_REQUESTS="1", AIAAS_DISABLE_METRICS="1", AIAAS_MAX_PAYLOAD_BYTES="64"
    )
    event = http_event("POST", "/models/digits-mlp/predict", b'{"inputs": [[0.5, 0.5, 0.5]]}' * 4)
    event["requestContext"]["requestId"] = "req-413"
    assert service.handle(event)["statusCode"] == 413
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (line,) = [entry for entry in lines if entry.get("message") == "request"]
    assert (line["route"], line["status"], line["request_id"]) == (ROUTE, 413, "req-413")


@pytest.mark.parametrize(
    ("value", "logs"), [("on", True), ("1", True), ("TRUE", True), ("off", False), ("", False)]
)
def test_a_request_log_switch_reads_the_words_people_write(value: str, logs: bool) -> None:
    # "on" was read as off: no request lines, and nothing said why.
    assert RequestMetrics.from_env({"AIAAS_LOG_REQUESTS": value}).log_requests is logs


def test_a_switch_set_to_something_else_is_an_error_naming_it() -> None:
    # AIAAS_DISABLE_METRICS=disabled kept EMF on without a word.
    with pytest.raises(
        AiaasError, match=r"^AIAAS_DISABLE_METRICS must be true or false .*'disabled'"
    ):
        RequestMetrics.from_env({"AIAAS_DISABLE_METRICS": "disabled"})
