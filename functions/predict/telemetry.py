"""Logs and metrics of the predict function, kept off the per-request budget.

- Logger: Powertools, JSON lines, correlation id = the API Gateway request id. One line per
  request only when `AIAAS_LOG_REQUESTS=true` (API Gateway access logs cover the rest); never
  request bodies.
- Metrics: CloudWatch EMF through Powertools, with model and version as dimensions. A
  Powertools metric costs ~10 us to add and ~15 us to flush, as much as the inference itself for
  a small model, so latencies are buffered in the container and written as one EMF document
  every `FLUSH_EVERY` requests or `FLUSH_SECONDS` (each sample keeps its value; a container
  that is frozen and never thawed loses at most that window). ColdStart is emitted at once.
"""

from __future__ import annotations

import os
import sys
import time

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

FLUSH_EVERY = 100
FLUSH_SECONDS = 10.0
EMF_MAX_VALUES = 100  # CloudWatch takes at most 100 values per metric per document

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "aiaas"))


def _on(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class RequestMetrics:
    """Buffered latency / error counts per (model, version), emitted as EMF."""

    def __init__(self, namespace: str | None = None) -> None:
        self.namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "aiaas")
        self.enabled = not _on("AIAAS_DISABLE_METRICS")
        self.log_requests = _on("AIAAS_LOG_REQUESTS")
        self._latencies: dict[tuple[str, str], list[float]] = {}
        self._errors: dict[tuple[str, str], int] = {}
        self._count = 0
        self._first = 0.0

    def cold_start(self, model: str, version: str, seconds: float) -> None:
        if self.enabled:
            metrics = self._metrics(model, version)
            metrics.add_metric(name="ColdStart", unit=MetricUnit.Count, value=1)
            metrics.add_metric(
                name="ModelLoadTime", unit=MetricUnit.Milliseconds, value=seconds * 1e3
            )
            metrics.flush_metrics()

    def record(self, model: str, version: str, seconds: float, status: int) -> None:
        if not self.enabled:
            return
        key = (model, version)
        self._latencies.setdefault(key, []).append(seconds * 1e3)
        if status >= 500:
            self._errors[key] = self._errors.get(key, 0) + 1
        self._count += 1
        now = time.monotonic()
        if self._count == 1:
            self._first = now
        if self._count >= FLUSH_EVERY or now - self._first >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """One EMF document per (model, version) with every buffered latency sample."""
        now_ms = int(time.time() * 1000)
        for (model, version), values in self._latencies.items():
            for start in range(0, len(values), EMF_MAX_VALUES):
                sys.stdout.write(
                    self._emf(model, version, values[start : start + EMF_MAX_VALUES], now_ms)
                )
            self._errors.pop((model, version), None)
        sys.stdout.flush()
        self._latencies.clear()
        self._errors.clear()
        self._count = 0

    def _emf(self, model: str, version: str, values: list[float], timestamp: int) -> str:
        # Written by hand (the format is small and stable): Powertools' add_metric costs ~10 us
        # per value, more than a small model's inference. ColdStart still goes through Powertools.
        doc = {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [["model", "version"]],
                        "Metrics": [
                            {"Name": "Latency", "Unit": "Milliseconds"},
                            {"Name": "Requests", "Unit": "Count"},
                            {"Name": "ServerErrors", "Unit": "Count"},
                        ],
                    }
                ],
            },
            "model": model,
            "version": version,
            "Latency": values,
            "Requests": len(values),
            "ServerErrors": self._errors.get((model, version), 0),
        }
        return orjson.dumps(doc).decode() + "\n"

    def _metrics(self, model: str, version: str) -> Metrics:
        metrics = Metrics(namespace=self.namespace)
        metrics.add_dimension(name="model", value=model)
        metrics.add_dimension(name="version", value=version)
        return metrics
