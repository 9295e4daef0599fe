"""The names of the predict function's metrics, shared by its EMF (CloudWatch) and by
`aiaas serve`'s `/metrics` (Prometheus), so a dashboard or alarm reads the same on both.

Light on purpose: the local gateway imports it without the function's logger.
"""

from __future__ import annotations

REQUESTS = "aiaas_requests_total"  # labels: REQUEST_LABELS
LATENCY = "aiaas_request_duration_seconds"  # labels: REQUEST_LABELS
COLD_STARTS = "aiaas_cold_starts_total"  # labels: LOAD_LABELS
MODEL_LOAD = "aiaas_model_load_seconds"  # labels: LOAD_LABELS
# Every load of a version by the model pool (functions/runtime/pool.py), by `outcome`: "loaded"
# or "failed" ("reloaded": loaded again soon after its eviction, functions/runtime/pool_churn.py).
# The two above are the cold start's alone (a worker's first load), kept as they
# were: a canary warmed later, a pinned version or one loaded again after an eviction is here.
MODEL_LOADS = "aiaas_model_loads_total"  # labels: LOAD_OUTCOME_LABELS
LOAD_DURATION = "aiaas_model_load_duration_seconds"  # labels: LOAD_OUTCOME_LABELS
# Versions the model pool dropped to make room (functions/runtime/pool.py): each loads again on
# its next request, so a rising count means the pool thrashes (raise AIAAS_MAX_VERSIONS/memory).
EVICTIONS = "aiaas_model_evictions_total"  # labels: EVICTION_LABELS
# Shadow traffic (functions/predict/shadow.py), per version pair: `version` answered the caller,
# `shadow_version` got a copy of the request afterwards, off the caller's path.
SHADOW_REQUESTS = "aiaas_shadow_requests_total"  # copies the shadow answered
SHADOW_ERRORS = "aiaas_shadow_errors_total"  # copies the shadow failed on (or could not compare)
SHADOW_DROPPED = "aiaas_shadow_dropped_total"  # sampled copies dropped: queue full, no time left
SHADOW_ROWS = "aiaas_shadow_rows_total"  # rows compared
SHADOW_AGREED = "aiaas_shadow_agreed_rows_total"  # ... with the same class (classifiers)
# How classes were matched when the two versions name them differently (as `aiaas compare`:
# functions/runtime/dataplane/class_match.py): rows matched by class index (counted in
# SHADOW_AGREED too), and rows whose classes nothing links (no agreement counted for them).
SHADOW_BY_INDEX = "aiaas_shadow_index_matched_rows_total"
SHADOW_UNMATCHED = "aiaas_shadow_unmatched_rows_total"
# Rows where either version answered a class the other does not have (classes matched by name: a
# class added or dropped between versions); counted in SHADOW_ROWS, never in SHADOW_AGREED.
SHADOW_UNSHARED = "aiaas_shadow_unshared_class_rows_total"
SHADOW_MAX_ABS = "aiaas_shadow_max_abs_diff"  # largest |output difference| of a request
SHADOW_MAX_REL = "aiaas_shadow_max_rel_diff"  # ... relative to the answer the caller got
SHADOW_LATENCY = "aiaas_shadow_duration_seconds"  # the shadow's time to answer the copy
# Data capture (functions/predict/capture.py), per model and version: lines written to the store,
# and lines not written, by `reason`: "full" (the buffer held its cap), "write_failed" (the
# store refused the object), "binary" (skipped: OIP binary tensors are not captured).
CAPTURE_LINES = "aiaas_capture_lines_total"  # labels: CAPTURE_LABELS
CAPTURE_DROPPED = "aiaas_capture_dropped_total"  # labels: CAPTURE_REASON_LABELS
CAPTURE_SKIPPED = "aiaas_capture_skipped_total"  # labels: CAPTURE_REASON_LABELS
SHADOW_LABELS = ("model", "version", "shadow_version")
ShadowLabels = tuple[str, str, str]  # their values: model, version, shadow_version
# `alias`: the alias whose split routed the request (the function's served ref: `name@alias`,
# `production` for a bare name); `-` for a route pinned to a version (it bypasses the split) and
# for a function serving `name:version`. One value a function (and `-`), never the caller's: a
# rollout of an alias judges only the requests that alias routed.
REQUEST_LABELS = ("model", "version", "route", "status_class", "alias")
LOAD_LABELS = ("model", "version")
LOAD_OUTCOME_LABELS = ("model", "version", "outcome")
EVICTION_LABELS = ("model",)
CAPTURE_LABELS = ("model", "version")
CAPTURE_REASON_LABELS = ("model", "version", "reason")
NO_LABEL = "-"  # no model, version or route applies (a refused request, a model not loaded)
# Request and shadow latency histograms' bounds: a small model answers in tens of microseconds
# (prometheus_client's defaults start at 5 ms). Here so the replay process can count buckets.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# A version load's bounds: a small model loads from the cache in ~10 ms, a large one fetched
# from S3 takes minutes.
LOAD_DURATION_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip

# A capture outcome (functions/runtime/capture/buffer.py's names) -> its metric and reason.
CAPTURE_OUTCOMES: dict[str, tuple[str, str | None]] = {
    "written": (CAPTURE_LINES, None),
    "full": (CAPTURE_DROPPED, "full"),
    "write_failed": (CAPTURE_DROPPED, "write_failed"),
    "binary": (CAPTURE_SKIPPED, "binary"),
}

_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ...: the label Prometheus and CloudWatch group statuses by."""
    return _CLASSES[status // 100] if 100 <= status < 600 else "5xx"


def capture_series(outcome: str, model: str, version: str) -> tuple[str, tuple[str, ...]]:
    """The metric a capture outcome counts in, and its label values."""
    name, reason = CAPTURE_OUTCOMES[outcome]
    return name, (model, version) if reason is None else (model, version, reason)
