"""Request counts and latency histograms of one `aiaas serve` worker, kept as plain numbers.

prometheus_client's Counter and Histogram take a lock per value they change (three per request:
the count, the latency sum, one bucket) and search the buckets in Python: ~3 us a request,
a twentieth of a small model's whole request. Here one lock guards one list per label set, the
bucket is found by bisection, and a scrape turns the numbers into the same families
prometheus_client would expose with its `_created` series off, as prometheus.py turns them
off (`_total` of the counter; `_bucket`, `_count` and `_sum` of the histogram). Several workers (`--workers N`) keep using
prometheus_client's multiprocess files instead, which another worker's scrape must read.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

_Key = tuple[str, ...]
_COUNT, _TIMED, _SUM, _BUCKETS = 0, 1, 2, 3  # positions in a series' list


class RequestCounts:
    """A counter and a histogram over the same labels, as prometheus_client's collector."""

    def __init__(
        self,
        counter: tuple[str, str],  # (name without _total, help)
        histogram: tuple[str, str],
        labels: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        self.counter, self.histogram = counter, histogram
        self.labels = tuple(labels)
        self.bounds = tuple(buckets)
        self._le = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[_Key, list[float]] = {}
        self._lock = threading.Lock()

    def add(self, key: _Key, seconds: float | None) -> None:
        """One request; `seconds` None: counted, not timed (its histogram series still shows)."""
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = [0, 0, 0.0] + [0] * (len(self.bounds) + 1)
                self._series[key] = series
            series[_COUNT] += 1
            if seconds is not None:
                series[_TIMED] += 1
                series[_SUM] += seconds
                # the first bound >= seconds, as prometheus_client's `value <= bound`
                series[_BUCKETS + bisect.bisect_left(self.bounds, seconds)] += 1

    def forget(self, gone: Callable[[str, str], bool]) -> None:
        """Drop the series of the (model, version) pairs `gone` names (pruned versions)."""
        with self._lock:
            for key in [key for key in self._series if gone(key[0], key[1])]:
                del self._series[key]

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = {key: list(series) for key, series in self._series.items()}
        name, documentation = self.counter
        counter = Metric(name, documentation, "counter")
        histogram = Metric(self.histogram[0], self.histogram[1], "histogram")
        for key, series in snapshot.items():
            labels = dict(zip(self.labels, key, strict=True))
            counter.add_sample(f"{name}_total", labels, series[_COUNT])
            self._histogram_samples(histogram, labels, series)
        yield counter
        yield histogram

    def _histogram_samples(
        self, metric: Metric, labels: dict[str, str], series: list[float]
    ) -> None:
        name = metric.name
        cumulative = 0.0
        for le, count in zip(self._le, series[_BUCKETS:], strict=True):
            cumulative += count
            metric.add_sample(f"{name}_bucket", {**labels, "le": le}, cumulative)
        metric.add_sample(f"{name}_count", labels, series[_TIMED])
        metric.add_sample(f"{name}_sum", labels, series[_SUM])
