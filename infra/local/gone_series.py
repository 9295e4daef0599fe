"""The series of versions gone from the registry, left out of `/metrics` once idle.

A server keeps every label set it counted: each version `aiaas prune` (or the control plane's
delete) removed kept its request, load and capture series in every scrape for the life of the
server, one more set per version published and pruned. A scrape now leaves out the series whose
`version` (or `shadow_version`) the model's prune record names, once none of that version's
series has changed for `GONE_AFTER_S`; a single worker then drops them from its memory too
(several workers' shared files keep them, left out of each scrape). Not at once: callers pinned
to a pruned version are answered from memory until `AIAAS_ALIAS_TTL`, then get 404s, and both
are what an operator watches (a new request brings the series back, counting on).

A model whose folder was deleted by hand (there is no delete command for a whole model) has no
record left: its every series (every version, `-`, and those with no version label) leaves the
same way once idle. Found soaking serve: 12 removed models' series stayed for good.

Cheap: no listing of the store. The prune record (`models/<name>/pruned.json`, which every
prune and delete writes before the first manifest goes) is read at most once a scrape for each
model that has series: on a directory store at each scrape (a small file read), on S3 at most
once every `REREAD_S` a model (a GET), and whether the newest version the series name is still
published (a stat with each read; on S3 a HEAD once every `GONE_REREAD_S`; a listing only when
it is not). A store that cannot be read leaves every series in.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from functions.predict.metric_names import NO_LABEL
from functions.runtime.errors import AiaasError
from functions.runtime.prune_log import pruned_versions
from functions.runtime.refs import manifest_key
from functions.runtime.registry import Registry, version_sort_key
from functions.runtime.store import ObjectStore, open_store
from functions.runtime.store_api import LOCAL_BUCKET

if TYPE_CHECKING:  # imported once the gateway is up (metrics.py): not before a first answer
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.metrics_core import Metric
    from prometheus_client.samples import Sample

REREAD_S = 5.0  # S3: a scrape every 15 s (Prometheus' default) reads each record every time
# A pruned version's series stay while they change, and this long after: past AIAAS_ALIAS_TTL
# (60 s, when pinned callers' 200s turn into 404s) and many 15 s scrapes, so a scrape never
# misses what they counted last. `aiaas serve` reads AIAAS_METRICS_GONE_AFTER_S at its start.
GONE_AFTER_S = 900.0
# S3: whether a model is gone at all (a HEAD of its newest version's manifest) is judged again at
# most this often, not at each record read: its series leave only once idle for GONE_AFTER_S,
# and the HEAD each REREAD_S doubled a scrape's requests (two a model, in series).
GONE_REREAD_S = 60.0
GONE_AFTER_ENV = "AIAAS_METRICS_GONE_AFTER_S"
VERSION_LABELS = ("version", "shadow_version")

Gone = Callable[[str, str], bool]


class _Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class PrunedVersions:
    """Judges a scrape's samples: the (model, version) pairs whose series leave it, pruned per
    the model's record and unchanged for `after_s`. The store (a URI) is opened at the first
    scrape, not while the worker starts."""

    def __init__(
        self,
        store: ObjectStore | str,
        reread_s: float | None = None,
        after_s: float = GONE_AFTER_S,
    ) -> None:
        self._store = store
        self._reread_s = reread_s  # None: 0 on a directory store, else REREAD_S
        self.after_s = after_s
        # model -> (when, pruned, whether the model is gone: no version published at all, and
        # when that was judged)
        self._read: dict[str, tuple[float, frozenset[str], bool, float]] = {}
        # (model, pruned version) -> (its series' values, since when they are so)
        self._seen: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> ObjectStore:
        if isinstance(self._store, str):
            self._store = open_store(self._store)
        return self._store

    @property
    def reread_s(self) -> float:
        if self._reread_s is None:
            local = self.store.location.bucket == LOCAL_BUCKET  # a directory store: a file read
            self._reread_s = 0.0 if local else REREAD_S
        return self._reread_s

    @property
    def gone_reread_s(self) -> float:
        """How often a model is judged gone again: with each record read on a directory store
        (a stat), else every GONE_REREAD_S (never past `after_s`)."""
        return min(GONE_REREAD_S, self.after_s) if self.reread_s else 0.0

    def pruned(
        self, model: str, now: float, named: Iterable[str] = ()
    ) -> tuple[frozenset[str], bool]:
        """The versions the model's record names, read again once `reread_s` has passed, and
        whether the model is gone (its folder deleted by hand), judged again once
        `gone_reread_s` has; `named`: the versions its series name (the newest not pruned
        tells, at one stat or HEAD, that it is not gone)."""
        with self._lock:
            read = self._read.get(model)
        if read is None or now - read[0] >= self.reread_s:
            try:
                pruned = frozenset(pruned_versions(self.store, model))
                if read is not None and now - read[3] < self.gone_reread_s:
                    gone, judged = read[2], read[3]
                else:
                    gone, judged = self._gone(model, set(named) - pruned - {NO_LABEL}), now
            except (AiaasError, OSError):  # cannot tell: the series stay
                # judged again at the next read
                unread: tuple[frozenset[str], bool, float] = (frozenset(), False, -math.inf)
                pruned, gone, judged = read[1:] if read is not None else unread
            read = (now, pruned, gone, judged)
            with self._lock:
                self._read[model] = read
        return read[1], read[2]

    def _gone(self, model: str, published: set[str]) -> bool:
        """Whether no version of `model` is published any more (`published`: those its series
        name that no prune took)."""
        newest = max(published, key=version_sort_key, default=None)
        if newest is not None and self.store.exists(manifest_key(model, newest)):
            return False
        return not Registry(self.store).versions(model, missing_ok=True)

    def judge(self, metrics: Iterable[Metric]) -> Gone:
        """Which versions' series leave this scrape of `metrics`: each model's record is read
        once (a scrape has a sample per series, thousands with several workers' files)."""
        now = time.monotonic()
        by_model: dict[str, list[Sample]] = {}
        for metric in metrics:
            for sample in metric.samples:
                model = sample.labels.get("model")
                if model is not None and model != NO_LABEL:
                    by_model.setdefault(model, []).append(sample)
        samples: dict[tuple[str, str], list[Sample]] = {}
        for model, its in by_model.items():
            named = {s.labels[n] for s in its for n in VERSION_LABELS if n in s.labels}
            pruned, gone = self.pruned(model, now, named)
            for sample in its:
                versions = [sample.labels[n] for n in VERSION_LABELS if n in sample.labels]
                for version in versions if versions or not gone else [""]:
                    if gone or version in pruned:
                        samples.setdefault((model, version), []).append(sample)
        idle = self._idle(samples, now)
        return lambda model, version: (model, version) in idle

    def _idle(
        self, samples: dict[tuple[str, str], list[Sample]], now: float
    ) -> set[tuple[str, str]]:
        """The pruned versions none of whose series changed for `after_s` (a version first seen
        now counts from now: a worker started since, or traffic that brought it back)."""
        idle: set[tuple[str, str]] = set()
        seen: dict[tuple[str, str], tuple[int, float]] = {}
        with self._lock:
            for key, its in samples.items():
                values = hash(frozenset((s.name, *sorted(s.labels.items()), s.value) for s in its))
                before = self._seen.get(key)
                since = before[1] if before is not None and before[0] == values else now
                seen[key] = (values, since)
                if now - since >= self.after_s:
                    idle.add(key)
            self._seen = seen  # versions no longer in a scrape are forgotten
        return idle


def gone_labels(labels: dict[str, str], gone: Gone) -> bool:
    """Whether a series' labels name a version gone from the registry (a series naming no
    version: whether its model is gone, as `gone(model, "")` says)."""
    model = labels.get("model")
    if model is None:
        return False
    versions = [labels[name] for name in VERSION_LABELS if name in labels]
    return any(gone(model, v) for v in versions) if versions else gone(model, "")


class WithoutGone:
    """A collector's families with the samples of gone versions left out; `gone`, once
    collected, names those versions (a single worker forgets them)."""

    def __init__(self, collector: _Collector, pruned: PrunedVersions) -> None:
        self.collector = collector
        self.pruned = pruned
        self.gone: Gone = lambda model, version: False

    def collect(self) -> Iterator[Metric]:
        metrics = list(self.collector.collect())
        self.gone = gone = self.pruned.judge(metrics)
        for metric in metrics:
            kept = [s for s in metric.samples if not gone_labels(s.labels, gone)]
            if len(kept) != len(metric.samples):
                metric.samples = kept
            yield metric


def forget(families: Iterable[MetricWrapperBase], gone: Gone) -> None:
    """Remove the children of gone versions from prometheus_client families (one worker: its
    memory holds them). Their label values are the keys of the family's `_metrics`."""
    for family in families:
        names = family._labelnames
        for values in list(getattr(family, "_metrics", {})):
            if gone_labels(dict(zip(names, values, strict=True)), gone):
                family.remove(*values)
