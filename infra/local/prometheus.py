"""The Prometheus families behind `aiaas serve`'s `/metrics` (prometheus_client).

Imported only once the gateway is up (`infra/local/metrics.py` defers it): prometheus_client
takes ~25-30 ms to import, which a server's first answer should not wait for.

Several workers (`aiaas serve --workers N`) share one port, so a scrape reaches any one of
them: with N > 1 every worker writes its values to files in `PROMETHEUS_MULTIPROC_DIR` (set by
`aiaas serve`, prometheus_client's multiprocess mode) and a scrape sums all workers' files
(`metrics_files.py`: kept there while the server runs). Counters and histograms only, which
that mode sums exactly; and the shadow's largest differences, gauges that mode reads as the
maximum over workers.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from functions.predict.metric_names import (
    CAPTURE_DROPPED,
    CAPTURE_LABELS,
    CAPTURE_LINES,
    CAPTURE_REASON_LABELS,
    CAPTURE_SKIPPED,
    COLD_STARTS,
    EVICTION_LABELS,
    EVICTIONS,
    LATENCY,
    LATENCY_BUCKETS,
    LOAD_DURATION,
    LOAD_DURATION_BUCKETS,
    LOAD_LABELS,
    LOAD_OUTCOME_LABELS,
    MODEL_LOAD,
    MODEL_LOADS,
    NO_LABEL,
    REQUEST_LABELS,
    REQUESTS,
    SHADOW_AGREED,
    SHADOW_BY_INDEX,
    SHADOW_DROPPED,
    SHADOW_ERRORS,
    SHADOW_LABELS,
    SHADOW_LATENCY,
    SHADOW_MAX_ABS,
    SHADOW_MAX_REL,
    SHADOW_REQUESTS,
    SHADOW_ROWS,
    SHADOW_UNMATCHED,
    SHADOW_UNSHARED,
    capture_series,
)
from infra.local import metrics_room
from infra.local.gone_series import PrunedVersions, WithoutGone, forget, gone_labels
from infra.local.metrics_files import SharedFiles
from infra.local.request_counts import RequestCounts

if TYPE_CHECKING:
    from functions.predict.shadow_tally import ShadowTally

__all__ = ["LATENCY_BUCKETS", "PrometheusFamilies"]

_SHADOW_COUNTERS = {
    SHADOW_REQUESTS: "Copies of requests the shadow version answered, by version pair",
    SHADOW_ERRORS: "Copies the shadow version failed on or answered incomparably",
    SHADOW_DROPPED: "Sampled copies dropped because the shadow's queue was full",
    SHADOW_ROWS: "Rows the shadow's answers were compared on",
    SHADOW_AGREED: "Rows on which the shadow gave the same class (classifiers)",
    SHADOW_BY_INDEX: "Rows whose classes, named differently, were matched by class index",
    SHADOW_UNMATCHED: "Rows whose classes could not be matched: no agreement counted",
    SHADOW_UNSHARED: "Rows where a version answered a class the other does not have",
}
_SHADOW_GAUGES = {
    SHADOW_MAX_ABS: "Largest absolute output difference, shadow vs served, since start",
    SHADOW_MAX_REL: "Largest relative output difference, shadow vs served, since start",
}
_CAPTURE_COUNTERS = {
    CAPTURE_LINES: ("Captured request lines written to the store", CAPTURE_LABELS),
    CAPTURE_DROPPED: ("Captured lines lost: buffer full or write failed", CAPTURE_REASON_LABELS),
    CAPTURE_SKIPPED: ("Sampled requests not captured (OIP binary)", CAPTURE_REASON_LABELS),
}

_Family = TypeVar("_Family", Counter, Gauge, Histogram, Summary)
_Made = TypeVar("_Made")
_Args = ParamSpec("_Args")


class _Dropped(Exception):
    """A sample not recorded: its new series found no room on the disk (warned once)."""


def _dropped_when_full(record: Callable[_Args, None]) -> Callable[_Args, None]:
    """`record`, a sample whose series could not be made (a full disk) dropped, not raised
    into the request that counted it."""

    @functools.wraps(record)
    def recording(*args: _Args.args, **kwargs: _Args.kwargs) -> None:
        with contextlib.suppress(_Dropped):
            record(*args, **kwargs)

    return recording


def add_to_histogram(child: Histogram, total: float, buckets: Sequence[int]) -> None:
    """Observations already counted per bucket (`+Inf` last, not cumulative) added to a
    histogram's child, as observing each would have. prometheus_client has no public call
    for this; its child keeps exactly these values (`_sum`, one `_buckets` value per bound,
    in memory or in the multiprocess files), which tests/infra/test_shadow_tally.py pins."""
    values = child._buckets
    if len(values) != len(buckets):
        raise ValueError(f"{len(buckets)} bucket counts for a histogram of {len(values)}")
    child._sum.inc(total)
    for value, count in zip(values, buckets, strict=True):
        if count:
            value.inc(count)


SERVE_WORKERS = "aiaas_serve_workers"


def _shadow(values: tuple[str, ...]) -> dict[str, str]:
    return dict(zip(SHADOW_LABELS, values, strict=True))


def _family_name(name: str) -> str:
    """prometheus_client adds `_total` to a counter's name itself."""
    return name.removesuffix("_total")


class PrometheusFamilies:
    """The gateway's metric families, in their own registry, or (`shared_dir`, several
    workers) in the workers' shared files."""

    def __init__(self, shared_dir: Path | None = None, workers: int = 1) -> None:
        self.multiprocess = shared_dir is not None
        self.shared = SharedFiles(shared_dir) if shared_dir is not None else None
        self.registry = CollectorRegistry()
        # No `_created` gauge beside each series: the text format makes each a series of its
        # own, read by nothing, which several workers' files never had (the same names
        # whatever --workers). prometheus_client's switch is per process, read at each scrape.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        requests = (
            _family_name(REQUESTS),
            "Requests answered, by model, version, route, status class and routing alias",
        )
        latency = (LATENCY, "Time the function took to answer, in seconds")
        self.counts: RequestCounts | None = None
        if self.multiprocess:  # the shared files: another worker's scrape reads them
            metrics_room.install()  # blocks allocated before mapped: a full disk is no SIGBUS
            self.requests = Counter(*requests, REQUEST_LABELS, registry=self.registry)
            self.latency = Histogram(
                *latency, REQUEST_LABELS, registry=self.registry, buckets=LATENCY_BUCKETS
            )
        else:
            self.counts = RequestCounts(requests, latency, REQUEST_LABELS, LATENCY_BUCKETS)
            self.registry.register(self.counts)
        self.cold_starts = Counter(
            _family_name(COLD_STARTS),
            "Function instances started (each loads its model)",
            LOAD_LABELS,
            registry=self.registry,
        )
        # A summary (count and sum), no buckets: every model a server loads had two bucketed
        # histograms, ~2.5 KB of /metrics each before any request (1 MB for 400 models); the
        # distribution of load times is LOAD_DURATION's buckets (the cold start's load is one).
        self.load_time = Summary(
            MODEL_LOAD,
            "Time a cold start took to load the model, in seconds",
            LOAD_LABELS,
            registry=self.registry,
        )
        self.loads = Counter(
            _family_name(MODEL_LOADS),
            "Model versions the pool loaded, or failed to load, by outcome (every load: cold "
            "starts, canaries, pinned versions, versions loaded again after an eviction)",
            LOAD_OUTCOME_LABELS,
            registry=self.registry,
        )
        self.load_duration = Histogram(
            LOAD_DURATION,
            "Time the pool took to load a model version (or to fail to), in seconds",
            LOAD_OUTCOME_LABELS,
            registry=self.registry,
            buckets=LOAD_DURATION_BUCKETS,
        )
        self.evictions = Counter(
            _family_name(EVICTIONS),
            "Model versions evicted from the pool to make room (each loads again when asked)",
            EVICTION_LABELS,
            registry=self.registry,
        )
        # A reload (SIGHUP) starts every worker again, each counting a cold start per model:
        # AiaasRepeatedColdStarts allows that many (infra/observability/aiaas-rules.yaml).
        self.workers = workers
        self._workers_gauge: Gauge | None = None
        self._serve_workers()
        self.shadow_counters = {
            name: Counter(_family_name(name), doc, SHADOW_LABELS, registry=self.registry)
            for name, doc in _SHADOW_COUNTERS.items()
        }
        self.shadow_gauges = {
            name: Gauge(name, doc, SHADOW_LABELS, registry=self.registry, multiprocess_mode="max")
            for name, doc in _SHADOW_GAUGES.items()
        }
        self.shadow_latency = Histogram(
            SHADOW_LATENCY,
            "Time the shadow version took to answer a copy, in seconds",
            SHADOW_LABELS,
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.capture_counters = {
            name: Counter(_family_name(name), doc, labels, registry=self.registry)
            for name, (doc, labels) in _CAPTURE_COUNTERS.items()
        }
        self._max: dict[tuple[str, tuple[str, ...]], float] = {}
        # labels() costs ~1 us; a service sees few label sets, so each child is looked up once.
        self._children: dict[tuple[str, ...], tuple[Counter, Histogram]] = {}

    @_dropped_when_full
    def request(
        self,
        model: str,
        version: str,
        route: str,
        status_class: str,
        seconds: float | None,
        alias: str = NO_LABEL,
    ) -> None:
        """One request; `seconds` None: refused before any function ran (counted, not timed)."""
        key = (model, version, route, status_class, alias)
        if self.counts is not None:
            self.counts.add(key, seconds)
            return
        children = self._children.get(key)
        if children is None:
            children = self._child(self.requests, key), self._child(self.latency, key)
            self._children[key] = children
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    @_dropped_when_full
    def model_load(self, model: str, version: str, seconds: float) -> None:
        self._child(self.cold_starts, (model, version)).inc()
        self._child(self.load_time, (model, version)).observe(seconds)

    @_dropped_when_full
    def version_load(self, model: str, version: str, outcome: str, seconds: float) -> None:
        labels = (model, version, outcome)
        self._child(self.loads, labels).inc()
        self._child(self.load_duration, labels).observe(seconds)

    @_dropped_when_full
    def model_eviction(self, model: str) -> None:
        self._child(self.evictions, (model,)).inc()

    @_dropped_when_full
    def shadow(self, labels: tuple[str, str, str], tally: ShadowTally) -> None:
        """Copies replayed, summed (functions/predict/shadow_tally.py): a few increments."""
        latency = self._child(self.shadow_latency, labels)
        add_to_histogram(latency, tally.latency_sum, tally.buckets)
        counters = self.shadow_counters
        if tally.errors:
            self._child(counters[SHADOW_ERRORS], labels).inc(tally.errors)
        if not tally.answered:
            return
        self._child(counters[SHADOW_REQUESTS], labels).inc(tally.answered)
        self._child(counters[SHADOW_ROWS], labels).inc(tally.rows)
        if tally.agreed is not None:
            self._child(counters[SHADOW_AGREED], labels).inc(tally.agreed)
        classes = (SHADOW_BY_INDEX, SHADOW_UNMATCHED, SHADOW_UNSHARED)
        for name, rows in zip(
            classes, (tally.by_index, tally.unmatched, tally.unshared), strict=True
        ):
            if rows:
                self._child(counters[name], labels).inc(rows)
        for name, value in ((SHADOW_MAX_ABS, tally.max_abs), (SHADOW_MAX_REL, tally.max_rel)):
            key = (name, labels)
            if value > self._max.get(key, -1.0):
                self._max[key] = value
                self._child(self.shadow_gauges[name], labels).set(value)

    @_dropped_when_full
    def shadow_dropped(self, labels: tuple[str, str, str]) -> None:
        self._child(self.shadow_counters[SHADOW_DROPPED], labels).inc()

    @_dropped_when_full
    def capture(self, outcome: str, model: str, version: str, lines: int) -> None:
        name, labels = capture_series(outcome, model, version)
        self._child(self.capture_counters[name], labels).inc(lines)

    def render(self, gone: PrunedVersions | None = None) -> tuple[bytes, str]:
        """(the text exposition format, its content type), without the series `gone` judges
        gone (pruned and idle: gone_series.py): a single worker forgets them, shared files
        keep them."""
        if self.shared is not None:
            if self._workers_gauge is None:  # its file could not be made as this worker started
                self._serve_workers()
            return self.shared.render(self.registry, gone), CONTENT_TYPE_LATEST
        if gone is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        without = WithoutGone(self.registry, gone)
        registry = CollectorRegistry()
        registry.register(without)
        text = generate_latest(registry)
        families = [self.cold_starts, self.load_time, self.loads, self.load_duration]
        families += [*self.shadow_counters.values(), *self.shadow_gauges.values()]
        families += [self.shadow_latency, *self.capture_counters.values()]
        forget(families, without.gone)
        shadows = self._max.items()
        self._max = {k: v for k, v in shadows if not gone_labels(_shadow(k[1]), without.gone)}
        if self.counts is not None:
            self.counts.forget(without.gone)
        return text, CONTENT_TYPE_LATEST

    def _serve_workers(self) -> None:
        """The gauge of --workers, the first value a worker writes to the shared files, as it
        starts: a worker granian starts again (after a crash, `kill -9`) or late (a slow host)
        while the directory is gone makes it again, as a running worker does; one that cannot
        (a file in its place, a full disk) starts without it, said once, and a later scrape
        tries again. It used to fail to build its app, which granian took for a crash loop:
        the whole server ended."""
        with contextlib.suppress(_Dropped):
            self._workers_gauge = self._made(
                lambda: Gauge(
                    SERVE_WORKERS,
                    "Worker processes this aiaas serve runs (--workers)",
                    registry=self.registry,
                    multiprocess_mode="max",
                )
            )
            self._workers_gauge.set(self.workers)

    def _child(self, family: _Family, labels: Sequence[str]) -> _Family:
        """`family.labels(*labels)`, made as `_made` makes it."""
        return self._made(lambda: family.labels(*labels))

    def _made(self, make: Callable[[], _Made]) -> _Made:
        """`make()`, which may open a file in the shared directory; there, the directory made
        again if it is gone (removed while serving, or before this worker started), then once
        more; `_Dropped` (warned once) if the file still cannot be made."""
        try:
            return make()
        except OSError as exc:
            if self.shared is None:
                raise
            failure = exc
        if isinstance(failure, FileNotFoundError) and self.shared.recover(failure):
            try:
                return make()
            except OSError as exc:
                failure = exc
        self.shared.no_room(failure)  # no room on the disk (metrics_room.py), no directory
        raise _Dropped from failure
