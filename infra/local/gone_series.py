"""The series of versions gone from the registry, left out of `/metrics`.

A server keeps every label set it counted: each version `aiaas prune` (or the control plane's
delete) removed kept its request, load and capture series in every scrape for the life of the
server, one more set per version published and pruned. A scrape now leaves out the series whose
`version` (or `shadow_version`) the model's prune record names, and a single worker drops
them from its memory too (several workers' shared files keep them, left out of each scrape).

Cheap: no listing of the store. The prune record (`models/<name>/pruned.json`, which every
prune and delete writes before the first manifest goes) is read for the models that have
series only: on a directory store at each scrape (a small file read: gone at the next scrape),
on S3 at most once every `REREAD_S` a model (a GET). A store that cannot be read leaves every
series in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from functions.predict.metric_names import NO_LABEL
from functions.runtime.errors import AiaasError
from functions.runtime.prune_log import pruned_versions
from functions.runtime.store import ObjectStore, open_store
from functions.runtime.store_api import LOCAL_BUCKET

if TYPE_CHECKING:  # imported once the gateway is up (metrics.py): not before a first answer
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.metrics_core import Metric

REREAD_S = 5.0  # S3: a scrape every 15 s (Prometheus' default) reads each record every time
VERSION_LABELS = ("version", "shadow_version")


class _Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


class PrunedVersions:
    """`(model, version) -> True` once the model's prune record names the version. The store
    (a URI) is opened at the first scrape, not while the worker starts."""

    def __init__(self, store: ObjectStore | str, reread_s: float | None = None) -> None:
        self._store = store
        self._reread_s = reread_s  # None: 0 on a directory store, else REREAD_S
        self._read: dict[str, tuple[float, frozenset[str]]] = {}  # model -> (when, pruned)
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

    def __call__(self, model: str, version: str) -> bool:
        if NO_LABEL in (model, version):
            return False
        now = time.monotonic()
        with self._lock:
            read = self._read.get(model)
        if read is None or now - read[0] >= self.reread_s:
            try:
                pruned = frozenset(pruned_versions(self.store, model))
            except (AiaasError, OSError):  # cannot tell: the series stay
                pruned = read[1] if read is not None else frozenset()
            read = (now, pruned)
            with self._lock:
                self._read[model] = read
        return version in read[1]


Gone = Callable[[str, str], bool]


def gone_labels(labels: dict[str, str], gone: Gone) -> bool:
    """Whether a series' labels name a version gone from the registry."""
    model = labels.get("model")
    if model is None:
        return False
    return any(name in labels and gone(model, labels[name]) for name in VERSION_LABELS)


class WithoutGone:
    """A collector's families with the samples of gone versions left out."""

    def __init__(self, collector: _Collector, gone: Gone) -> None:
        self.collector = collector
        self.gone = gone

    def collect(self) -> Iterator[Metric]:
        for metric in self.collector.collect():
            kept = [s for s in metric.samples if not gone_labels(s.labels, self.gone)]
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
