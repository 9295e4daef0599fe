"""The names of the predict function's metrics, shared by its EMF (CloudWatch) and by
`aiaas serve`'s `/metrics` (Prometheus), so a dashboard or alarm reads the same on both.

Light on purpose: the local gateway imports it without the function's logger.
"""

from __future__ import annotations

REQUESTS = "aiaas_requests_total"  # labels: REQUEST_LABELS
LATENCY = "aiaas_request_duration_seconds"  # labels: REQUEST_LABELS
COLD_STARTS = "aiaas_cold_starts_total"  # labels: LOAD_LABELS
MODEL_LOAD = "aiaas_model_load_seconds"  # labels: LOAD_LABELS
REQUEST_LABELS = ("model", "version", "route", "status_class")
LOAD_LABELS = ("model", "version")
NO_LABEL = "-"  # no model, version or route applies (a refused request, a model not loaded)

_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ...: the label Prometheus and CloudWatch group statuses by."""
    return _CLASSES[status // 100] if 100 <= status < 600 else "5xx"
