"""The single-worker request counts expose what prometheus_client's own Counter and Histogram
would for the same requests: same families, samples, labels and values, with its `_created`
series off as `aiaas serve` turns them off (infra/local/prometheus.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    enable_created_metrics,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from functions.predict.metric_names import REQUEST_LABELS
from infra.local.prometheus import LATENCY_BUCKETS
from infra.local.request_counts import RequestCounts

REQUESTS = [
    (("m", "1", "POST /models/{name}/predict", "2xx", "production"), 0.00004),
    (("m", "1", "POST /models/{name}/predict", "2xx", "production"), 0.0001),  # on a bound
    (("m", "1", "POST /models/{name}/predict", "2xx", "production"), 0.0003),
    (("m", "1", "POST /models/{name}/predict", "4xx", "production"), 2.0),
    (("m", "2", "POST /models/{name}/predict", "2xx", "production"), 100.0),  # past: +Inf
    (("-", "-", "-", "4xx", "-"), None),  # refused by the gateway: counted, not timed
]


def samples(
    registry: CollectorRegistry,
) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], float]]:
    text = generate_latest(registry).decode()
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.append((family.name, family.type, sample.name, labels, sample.value))
    return sorted(found)


@pytest.fixture
def no_created() -> Iterator[None]:
    """prometheus_client's switch is per process: back to its default afterwards."""
    disable_created_metrics()
    yield
    enable_created_metrics()


@pytest.mark.usefixtures("no_created")
def test_the_exposition_is_prometheus_clients() -> None:
    ours = CollectorRegistry()
    counts = RequestCounts(
        ("aiaas_requests", "Requests"), ("aiaas_request_duration_seconds", "Latency"),
        REQUEST_LABELS, LATENCY_BUCKETS,
    )  # fmt: skip
    ours.register(counts)
    theirs = CollectorRegistry()
    counter = Counter("aiaas_requests", "Requests", REQUEST_LABELS, registry=theirs)
    histogram = Histogram(
        "aiaas_request_duration_seconds", "Latency", REQUEST_LABELS,
        registry=theirs, buckets=LATENCY_BUCKETS,
    )  # fmt: skip
    for key, seconds in REQUESTS:
        counts.add(key, seconds)
        counter.labels(*key).inc()
        child = histogram.labels(*key)  # created with the count, as PrometheusFamilies does
        if seconds is not None:
            child.observe(seconds)
    assert samples(ours) == samples(theirs)
    assert len(samples(ours)) == 4 * (1 + len(LATENCY_BUCKETS) + 1 + 2)  # four label sets
