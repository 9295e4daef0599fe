"""Logs and metrics of the predict function, kept off the per-request budget.

- Logger: the standard library's `aiaas` logger, which Lambda itself writes as JSON lines (the
  template sets `LogFormat: JSON`: timestamp, level, message, logger, Lambda's requestId, and
  each `extra` field) and `aiaas serve` the same way (infra/local/lambda_logs.py). Powertools'
  Logger did the same at ~14 ms of every cold start (its import) and ~0.3 us a request (the
  correlation id set per request); lines written during a request name the API Gateway request
  id as `request_id`. One line per request only when `AIAAS_LOG_REQUESTS=true` (model,
  version, route, status, ms, request id; never bodies); API Gateway access logs cover the rest.
- Metrics: CloudWatch EMF written by hand (Powertools' `add_metric` costs ~10 us a value, as
  much as a small model's inference), with the names and labels `aiaas serve` exposes on
  `/metrics` (below). Latencies are buffered and written as one document per label set when,
  at the end of a request, the buffer is `FLUSH_SECONDS` old, holds `FLUSH_EVERY` samples, or
  the request came after `FLUSH_SECONDS` of idleness (it and the samples before the gap are
  written at once, each under its own timestamp). So a lone request is never held, a burst is
  held at most ~1 s, and a frozen container keeps at most the last second of a burst until its
  next request. Writing every request instead costs ~6 us (a pipe write per request).
- Shadow copies are replayed outside the caller's process (functions/shadow/), which writes
  one document per copy as it finishes it (`shadow`). Drops (a copy the replay could not take)
  are counted on the caller's path (a dict increment) and written with the request latencies.
  Locally the replay process's results come back summed per interval, for the observer only
  (`shadow_observed`, functions/predict/shadow_tally.py).
- Data capture's counts (lines written, dropped, skipped: functions/predict/capture.py) are
  summed per label set and written with the request latencies, by the same rule: they are
  reported at the end of the request that wrote, dropped or skipped the lines, before it is
  recorded. Counts reported off a request (a flush when capture is turned off) wait for the
  next flush. With capture off nothing is reported and `record` costs what it did.
- An observer (the local gateway's Prometheus metrics) may see every sample as it happens.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TextIO

import orjson

from functions.predict.metric_names import (
    CAPTURE_LABELS,
    CAPTURE_REASON_LABELS,
    COLD_STARTS,
    EVICTION_LABELS,
    EVICTIONS,
    LATENCY,
    LOAD_DURATION,
    LOAD_LABELS,
    LOAD_OUTCOME_LABELS,
    MODEL_LOAD,
    MODEL_LOADS,
    NO_LABEL,
    REQUEST_LABELS,
    REQUESTS,
    SHADOW_DROPPED,
    SHADOW_LABELS,
    SHADOW_LATENCY,
    SHADOW_MAX_ABS,
    SHADOW_MAX_REL,
    ShadowLabels,
    capture_series,
)
from functions.runtime.settings import env_flag

if TYPE_CHECKING:
    from functions.predict.shadow_tally import ShadowTally
    from functions.runtime.dataplane.compare import Comparison

__all__ = ["MetricsObserver", "RequestMetrics", "ShadowLabels", "logger"]

FLUSH_EVERY = 1000  # samples held at most (memory bound under heavy load)
FLUSH_SECONDS = 1.0
EMF_MAX_VALUES = 100  # CloudWatch takes at most 100 values per metric per document
_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")  # metric_names.status_class, inlined
_REQUEST_METRICS = [{"Name": REQUESTS, "Unit": "Count"}, {"Name": LATENCY, "Unit": "Seconds"}]
_LOAD_METRICS = [{"Name": COLD_STARTS, "Unit": "Count"}, {"Name": MODEL_LOAD, "Unit": "Seconds"}]
_EVICTION_METRICS = [{"Name": EVICTIONS, "Unit": "Count"}]
_VERSION_LOAD_METRICS = [
    {"Name": MODEL_LOADS, "Unit": "Count"},
    {"Name": LOAD_DURATION, "Unit": "Seconds"},
]
# Version loads kept for an observer attached later (`aiaas serve` attaches it after the cold
# start's loads); Lambda never attaches one, so past this many they are no longer kept.
_LOADS_KEPT = 64
_ALIAS_VERSION = ["model", "alias", "version"]
_ALIAS_VERSION_STATUS = ["model", "alias", "version", "status_class"]
_MODEL_STATUS = ["model", "status_class"]
_SHADOW_UNITS = {SHADOW_LATENCY: "Seconds", SHADOW_MAX_ABS: "None", SHADOW_MAX_REL: "None"}
logger = logging.getLogger("aiaas")


class MetricsObserver(Protocol):
    """Receives each sample as it is recorded (`aiaas serve`'s `/metrics`)."""

    def request(
        self,
        model: str,
        version: str,
        route: str,
        status_class: str,
        seconds: float,
        alias: str = NO_LABEL,
    ) -> None: ...

    def model_load(self, model: str, version: str, seconds: float) -> None: ...

    def version_load(self, model: str, version: str, outcome: str, seconds: float) -> None:
        """One load of a version by the pool, `outcome` "loaded" or "failed" (never per
        request: only a request that loads a version, or a canary warmed off any request)."""

    def model_eviction(self, model: str) -> None:
        """A version of `model` the pool dropped to make room (rare: never per request)."""

    def shadow(self, labels: ShadowLabels, tally: ShadowTally) -> None:
        """Copies the shadow answered or failed on, summed (one copy, or an interval's)."""

    def shadow_dropped(self, labels: ShadowLabels) -> None: ...

    def capture(self, outcome: str, model: str, version: str, lines: int) -> None:
        """Captured lines written, dropped or skipped (functions/runtime/capture/buffer.py)."""


class RequestMetrics:
    """Request counts and latencies per (model, version, route, status class, alias), as EMF."""

    def __init__(
        self,
        namespace: str = "aiaas",
        *,
        emf: bool = True,
        log_requests: bool = False,
        by_route: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        out: TextIO | None = None,  # None: sys.stdout at the time of writing
    ) -> None:
        self.namespace = namespace
        self.emf = emf
        self.log_requests = log_requests
        # The full (per route) dimension set: each route and status class a version serves is
        # 2 more custom metrics ($0.30 a month each at list price; 4 routes at 2xx and 4xx: 16
        # of a version's 28). Nothing the stack runs reads it; `route` stays in every document.
        self.by_route = by_route
        self._clock, self._wall, self._out = clock, wall, out
        self._buffer: dict[tuple[str, ...], list[float]] = {}
        self._held = 0
        self._since = 0.0  # clock() at the buffer's first sample
        self._stamp = 0  # wall time of it, in ms: the documents' timestamp
        self._last = -math.inf  # clock() at the previous request's end
        self._observer: MetricsObserver | None = None
        self._loads: list[tuple[str, str, float]] = []
        self._version_loads: list[tuple[str, str, str, float]] = []  # until an observer comes
        self._drops: dict[ShadowLabels, int] = {}  # counted by callers (see shadow_dropped)
        self._drops_written: dict[ShadowLabels, int] = {}  # ... and written with a flush
        self._captures: dict[tuple[str, tuple[str, ...]], int] = {}  # (metric, labels): lines
        # Reported on requests' threads and on the capture setting's background reader.
        self._captures_lock = threading.Lock()
        # Drops are counted on requests' threads and the replay channel's (`aiaas serve`).
        self._drops_lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RequestMetrics:
        """`POWERTOOLS_METRICS_NAMESPACE`, `AIAAS_DISABLE_METRICS`, `AIAAS_LOG_REQUESTS`,
        `AIAAS_METRICS_BY_ROUTE`."""
        return cls(
            env.get("POWERTOOLS_METRICS_NAMESPACE", "aiaas"),
            emf=not env_flag(env, "AIAAS_DISABLE_METRICS"),
            log_requests=env_flag(env, "AIAAS_LOG_REQUESTS"),
            by_route=env_flag(env, "AIAAS_METRICS_BY_ROUTE"),
        )

    def observe(self, observer: MetricsObserver) -> None:
        """Report every later sample to `observer` too, and the model loads already done."""
        self._observer = observer
        for model, version, seconds in self._loads:
            observer.model_load(model, version, seconds)
        for load in self._version_loads:
            observer.version_load(*load)
        self._version_loads = []

    def cold_start(self, model: str, version: str, seconds: float) -> None:
        """The container's model load: written at once (a cold start is rare and telling)."""
        self._loads.append((model, version, seconds))
        if self._observer is not None:
            self._observer.model_load(model, version, seconds)
        if self.emf:
            stamp = int(self._wall() * 1000)
            doc = self._document(LOAD_LABELS, (model, version), stamp, _LOAD_METRICS)
            doc.update({COLD_STARTS: 1, MODEL_LOAD: seconds})
            self._write([doc])

    def version_load(self, model: str, version: str, outcome: str, seconds: float) -> None:
        """A version the pool loaded or failed to load (functions/runtime/pool.py's `on_load`):
        written at once, as a cold start is (rare: a request that loads nothing calls nothing).
        One dimension set, [model, version, outcome]: 2 custom metrics a version and outcome."""
        observer = self._observer
        if observer is not None:
            observer.version_load(model, version, outcome, seconds)
        elif len(self._version_loads) < _LOADS_KEPT:
            self._version_loads.append((model, version, outcome, seconds))
        if self.emf:
            stamp = int(self._wall() * 1000)
            labels = (model, version, outcome)
            doc = self._document(LOAD_OUTCOME_LABELS, labels, stamp, _VERSION_LOAD_METRICS)
            doc.update({MODEL_LOADS: 1, LOAD_DURATION: seconds})
            self._write([doc])

    def eviction(self, model: str, version: str) -> None:
        """`model:version` evicted from the pool (functions/runtime/pool.py's `on_evict`):
        written at once, as a cold start is (rare, and each costs a load on a request)."""
        if self._observer is not None:
            self._observer.model_eviction(model)
        if self.emf:
            stamp = int(self._wall() * 1000)
            doc = self._document(EVICTION_LABELS, (model,), stamp, _EVICTION_METRICS)
            doc[EVICTIONS] = 1
            self._write([doc])

    def record(
        self,
        model: str,
        version: str,
        route: str,
        status: int,
        seconds: float,
        alias: str = NO_LABEL,
    ) -> None:
        """One answered request (at its end), routed by `alias`'s split ('-': pinned)."""
        # ~1 us in all; no lock (one costs ~0.3 us): Lambda runs one request at a time, and
        # `_flush` swaps the buffer before reading it (see there).
        label = _CLASSES[status // 100] if 100 <= status < 600 else "5xx"
        if self._observer is not None:
            self._observer.request(model, version, route, label, seconds, alias)
        if not self.emf:
            return
        key = (model, version, route, label, alias)
        now = self._clock()
        if now - self._last >= FLUSH_SECONDS:
            self._after_idle(now, key, seconds)
            return
        self._last = now
        values = self._buffer.get(key)
        if values is None:
            self._buffer[key] = [seconds]
        else:
            values.append(seconds)
        self._held += 1
        if self._held >= FLUSH_EVERY or now - self._since >= FLUSH_SECONDS:
            self._flush()
            self._since, self._stamp = now, int(self._wall() * 1000)

    def _after_idle(self, now: float, key: tuple[str, ...], seconds: float) -> None:
        """A request after idleness: the samples before the gap, then it, each under its own
        timestamp; the next samples are stamped from now."""
        self._flush()
        self._since, self._stamp = now, int(self._wall() * 1000)
        self._buffer[key] = [seconds]
        self._flush()
        self._last = now

    def shadow(self, labels: ShadowLabels, seconds: float, comparison: Comparison | None) -> None:
        """One replayed copy, from the replay: `comparison` None when it failed."""
        # Imported here: the replay's side only, not a predict function's cold start.
        from functions.predict.shadow_tally import ShadowTally, copy_values

        if self._observer is not None:
            self._observer.shadow(labels, ShadowTally.of(seconds, comparison))
        if not self.emf:
            return
        stamp = int(self._wall() * 1000)
        self._write([self._values_document(labels, stamp, copy_values(seconds, comparison))])

    def shadow_observed(self, labels: ShadowLabels, tally: ShadowTally) -> None:
        """Copies replayed elsewhere, which wrote their EMF: for the observer only."""
        if self._observer is not None:
            self._observer.shadow(labels, tally)

    def shadow_dropped(self, labels: ShadowLabels, count: int = 1) -> None:
        """Sampled copies the replay could not take (on the caller's path: ~0.3 us)."""
        with self._drops_lock:
            self._drops[labels] = self._drops.get(labels, 0) + count
        if self._observer is not None:
            for _ in range(count):
                self._observer.shadow_dropped(labels)

    def _drop_documents(self) -> list[dict[str, object]]:
        stamp = int(self._wall() * 1000)
        docs = []
        with self._drops_lock:  # two flushes at once must not both write one delta
            deltas = []
            for labels, count in self._drops.items():
                delta = count - self._drops_written.get(labels, 0)
                if delta > 0:
                    self._drops_written[labels] = count
                    deltas.append((labels, delta))
        for labels, delta in deltas:
            docs.append(self._values_document(labels, stamp, {SHADOW_DROPPED: delta}))
        return docs

    def capture(self, outcome: str, model: str, version: str, lines: int) -> None:
        """Captured lines written, dropped or skipped: summed, and written with the next flush
        of request samples (the request reporting them is recorded next)."""
        if self._observer is not None:
            self._observer.capture(outcome, model, version, lines)
        if self.emf:
            key = capture_series(outcome, model, version)
            with self._captures_lock:
                self._captures[key] = self._captures.get(key, 0) + lines

    def _values_document(
        self, labels: ShadowLabels, stamp: int, values: Mapping[str, float]
    ) -> dict[str, object]:
        units = [{"Name": n, "Unit": _SHADOW_UNITS.get(n, "Count")} for n in values]
        doc = self._document(SHADOW_LABELS, labels, stamp, units)
        doc.update(values)
        return doc

    def flush(self) -> None:
        """Write every buffered sample now."""
        self._flush()

    def _flush(self) -> None:
        # Swapped first, so a request recorded meanwhile on another thread (`aiaas serve
        # --metrics` runs slow functions on a pool) never changes the dict being read; one
        # that appended to a list already written misses its EMF line (local only; /metrics is
        # fed separately, exactly).
        buffer, self._buffer = self._buffer, {}
        self._held = 0
        docs = []
        for labels, values in buffer.items():
            for start in range(0, len(values), EMF_MAX_VALUES):
                chunk = values[start : start + EMF_MAX_VALUES]
                doc = self._document(REQUEST_LABELS, labels, self._stamp, _REQUEST_METRICS)
                doc.update({REQUESTS: len(chunk), LATENCY: chunk})
                docs.append(doc)
        if self._captures:  # rare: only capture's outcomes; never with capture off
            docs.extend(self._capture_documents())
        if self._drops:  # only with a shadow whose copies were dropped
            docs.extend(self._drop_documents())
        if docs:
            self._write(docs)

    def _capture_documents(self) -> list[dict[str, object]]:
        with self._captures_lock:
            counts, self._captures = self._captures, {}
        stamp = int(self._wall() * 1000)
        docs = []
        for (name, labels), lines in counts.items():
            names = CAPTURE_REASON_LABELS if len(labels) == 3 else CAPTURE_LABELS
            doc = self._document(names, labels, stamp, [{"Name": name, "Unit": "Count"}])
            doc[name] = lines
            docs.append(doc)
        return docs

    def _document(
        self,
        names: tuple[str, ...],
        values: tuple[str, ...],
        timestamp: int,
        metrics: list[dict[str, str]],
    ) -> dict[str, object]:
        # Per model and version, and in full; requests per alias and version (a rollout's
        # counts and p99: its alias's split alone, not pinned requests nor another alias's),
        # per status class of those (its error rate) and of the model (the code deploy's 5xx
        # alarm), and in full (per route) only with `by_route`.
        if names is REQUEST_LABELS:
            dimensions = [_ALIAS_VERSION, _ALIAS_VERSION_STATUS, _MODEL_STATUS]
            if self.by_route:
                dimensions.insert(1, list(names))
        elif names is LOAD_OUTCOME_LABELS:  # a failed load's count is what tells
            dimensions = [list(names)]
        elif len(names) > 2:
            dimensions = [list(names[:2]), list(names)]
        else:
            dimensions = [list(names)]
        return {
            "_aws": {
                "Timestamp": timestamp,
                "CloudWatchMetrics": [
                    {"Namespace": self.namespace, "Dimensions": dimensions, "Metrics": metrics}
                ],
            },
            **dict(zip(names, values, strict=True)),
        }

    def _write(self, docs: list[dict[str, object]]) -> None:
        out = self._out or sys.stdout
        out.write("".join(orjson.dumps(doc).decode() + "\n" for doc in docs))
        out.flush()
