"""The single-worker request counts expose what prometheus_client's own Counter and Histogram
would for the same requests: same families, samples, labels and values (`_created` aside)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from functions.predict.metric_names import REQUEST_LABELS
from infra.local.prometheus import LATENCY_BUCKETS
from infra.local.request_counts import RequestCounts

REQUESTS = [
    (("m", "1", "POST /models/{name}/predict", "2xx"), 0.00004),
    (("m", "1", "POST /models/{name}/predict", "2xx"), 0.0001),  # on a bound: that bucket
    (("m", "1", "POST /models/{name}/predict", "2xx"), 0.0003),
    (("m", "1", "POST /models/{name}/predict", "4xx"), 2.0),
    (("m", "2", "POST /models/{name}/predict", "2xx"), 100.0),  # past the last bound: +Inf
    (("-", "-", "-", "4xx"), None),  # refused by the gateway: counted, not timed
]


def samples(
    registry: CollectorRegistry,
) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], float]]:
    text = generate_latest(registry).decode()
    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            value = -1.0 if sample.name.endswith("_created") else sample.value
            found.append(
                (family.name, family.type, sample.name, tuple(sorted(sample.labels.items())), value)
            )
    return sorted(found)


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
    assert len(samples(ours)) == 4 * (2 + len(LATENCY_BUCKETS) + 1 + 3)  # four label sets
