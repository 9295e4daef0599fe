"""`/metrics` of a real `aiaas serve` over real HTTP, read by Prometheus' own text parser:
counts equal the requests sent per status class, with one worker and summed over two."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, start_serve

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREDICT = "POST /models/{name}/predict"
PINNED = "POST /models/{name}/versions/{version}/predict"
GOOD = orjson.dumps({"inputs": [[0.5] * 64]})
WRONG_SHAPE = orjson.dumps({"inputs": [[0.5] * 3]})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, _ = publish_digits(tmp_path_factory.mktemp("metrics"))
    return store


def scrape(base: str) -> dict[str, list[Sample]]:
    answer = httpx.get(f"{base}/metrics", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {f.name: f.samples for f in text_string_to_metric_families(answer.text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    return sum(found)


def send(base: str, path: str, body: bytes, times: int, headers: dict[str, str]) -> None:
    for _ in range(times):
        # A fresh connection each time, so several workers share the requests.
        answer = httpx.post(f"{base}{path}", content=body, headers=headers, timeout=30)
        assert answer.status_code in (200, 401, 404, 422), answer.text


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def served(request: pytest.FixtureRequest, store: Path) -> Iterator[tuple[str, int]]:
    workers = request.param
    args = ("--workers", str(workers), "--models", MODEL)
    env = {"AIAAS_API_TOKEN": TOKEN}
    for server in start_serve(store, *args, env=env, headers=AUTH):
        json_auth = {**AUTH, "content-type": "application/json"}
        send(server.base, f"/models/{MODEL}/predict", GOOD, 7, json_auth)
        send(server.base, f"/models/{MODEL}/predict", WRONG_SHAPE, 3, json_auth)
        send(server.base, f"/models/{MODEL}/versions/1/predict", WRONG_SHAPE, 2, json_auth)
        send(server.base, f"/models/{MODEL}/versions/9/predict", GOOD, 2, json_auth)
        send(server.base, f"/models/{MODEL}/predict", GOOD, 4, {})  # no token: 401
        yield server.base, workers


def test_requests_are_counted_per_status_class_version_and_route(served: tuple[str, int]) -> None:
    base, _ = served
    families = scrape(base)
    requests = families["aiaas_requests"]
    count = "aiaas_requests_total"
    assert value(requests, count, model=MODEL, version="1", route=PREDICT, status_class="2xx") == 7
    assert value(requests, count, model=MODEL, version="1", route=PREDICT, status_class="4xx") == 3
    assert value(requests, count, model=MODEL, version="1", route=PINNED, status_class="4xx") == 2
    # A version that never resolved is not a label (callers could make series without bound).
    assert value(requests, count, model=MODEL, version="-", route=PINNED, status_class="4xx") == 2
    assert value(requests, count, model="-", route="-", status_class="4xx") == 4  # the 401s
    assert value(requests, count) == 7 + 3 + 2 + 2 + 4
    latency = families["aiaas_request_duration_seconds"]
    timed = "aiaas_request_duration_seconds_count"
    assert value(latency, timed, model=MODEL, status_class="2xx") == 7
    assert value(latency, timed) == 7 + 3 + 2 + 2  # refusals are counted, not timed
    buckets = [
        s for s in latency if s.name.endswith("_bucket") and s.labels["status_class"] == "2xx"
    ]
    assert value(buckets, "aiaas_request_duration_seconds_bucket", le="+Inf") == 7
    assert value(latency, "aiaas_request_duration_seconds_sum", status_class="2xx") > 0


def test_each_worker_reports_its_cold_start_and_model_load(served: tuple[str, int]) -> None:
    base, workers = served
    # Each worker loads the model as it starts, in the background (infra/local/gateway.py's
    # warm_up): under a loaded CI host the second had not finished when the fixture's requests
    # were done (one cold start of two, 2026-12-07), so wait for it, a scrape at a time.
    deadline = time.monotonic() + 60
    while True:
        families = scrape(base)
        cold = value(
            families["aiaas_cold_starts"], "aiaas_cold_starts_total", model=MODEL, version="1"
        )
        if cold >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert cold == workers  # every worker loaded the model once, and the scrape sums them
    loads = families["aiaas_model_load_seconds"]
    assert value(loads, "aiaas_model_load_seconds_count", model=MODEL) == workers
    assert 0 < value(loads, "aiaas_model_load_seconds_sum", model=MODEL) < 30
    # ... and in the series of every load (by outcome): the same load; version 9's 404s
    # (not published) are no load at all.
    every = families["aiaas_model_loads"]
    assert value(every, "aiaas_model_loads_total", model=MODEL, version="1", outcome="loaded") == (
        workers
    )
    assert value(every, "aiaas_model_loads_total", model=MODEL) == workers
    timed = families["aiaas_model_load_duration_seconds"]
    assert value(timed, "aiaas_model_load_duration_seconds_count", outcome="loaded") == workers


def test_metrics_need_the_token_like_every_route(served: tuple[str, int]) -> None:
    base, _ = served
    answer = httpx.get(f"{base}/metrics", timeout=10)
    assert (answer.status_code, answer.json()) == (
        401,
        {"error": "missing or invalid bearer token"},
    )


def test_no_created_series_whatever_the_number_of_workers(served: tuple[str, int]) -> None:
    """One worker used to expose a `_created` gauge beside each counter and histogram series
    (prometheus_client's default; the multiprocess files of several workers have none): twice
    the counter's series in Prometheus, read by nothing, and names that changed with --workers."""
    base, _ = served
    names = {sample.name for samples in scrape(base).values() for sample in samples}
    assert "aiaas_requests_total" in names and "aiaas_cold_starts_total" in names
    assert not {name for name in names if name.endswith("_created")}
