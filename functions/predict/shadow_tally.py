"""Shadow results summed per version pair over an interval: what the local replay process
(functions/shadow/process.py) sends back instead of one result per copy, so the caller's
process applies a handful of increments per interval, not a dozen per copy.

Exact for everything `/metrics` shows: counts and rows add, the largest differences take the
maximum, and the shadow's latency is kept as prometheus_client keeps a histogram (its sum and
one count per bucket of LATENCY_BUCKETS, `+Inf` last), so adding the counts bucket by bucket
gives what observing each latency would have.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from functions.predict.metric_names import (
    LATENCY_BUCKETS,
    SHADOW_AGREED,
    SHADOW_BY_INDEX,
    SHADOW_ERRORS,
    SHADOW_LATENCY,
    SHADOW_MAX_ABS,
    SHADOW_MAX_REL,
    SHADOW_REQUESTS,
    SHADOW_ROWS,
    SHADOW_UNMATCHED,
    SHADOW_UNSHARED,
)
from functions.predict.metric_names import ShadowLabels as ShadowLabels  # importers find it here
from functions.runtime.dataplane.class_match import INDEX, UNMATCHED

if TYPE_CHECKING:  # light on purpose: replays' telemetry imports this module
    from functions.runtime.dataplane.compare import Comparison


_CLASS_MATCHES = {INDEX: SHADOW_BY_INDEX, UNMATCHED: SHADOW_UNMATCHED}


def copy_values(seconds: float, comparison: Comparison | None) -> dict[str, float]:
    """One replayed copy's metric values, as its EMF document holds them: `comparison` None
    when the shadow failed on it."""
    values: dict[str, float] = {SHADOW_LATENCY: seconds}
    if comparison is None:
        values[SHADOW_ERRORS] = 1
        return values
    values.update({SHADOW_REQUESTS: 1, SHADOW_ROWS: comparison.rows})
    values.update({SHADOW_MAX_ABS: comparison.max_abs, SHADOW_MAX_REL: comparison.max_rel})
    if comparison.agreed is not None:
        values[SHADOW_AGREED] = comparison.agreed
    if comparison.by in _CLASS_MATCHES:  # classes named differently: how they were matched
        values[_CLASS_MATCHES[comparison.by]] = comparison.rows
    if comparison.unshared:  # a class only one version has, answered
        values[SHADOW_UNSHARED] = comparison.unshared
    return values


def _no_buckets() -> list[int]:
    return [0] * (len(LATENCY_BUCKETS) + 1)


@dataclass
class ShadowTally:
    """The copies of one version pair replayed in an interval, summed."""

    copies: int = 0  # replayed: answered + failed
    errors: int = 0  # the shadow failed (or answered incomparably)
    rows: int = 0
    agreed: int | None = None  # None: no copy had labels (a regressor) or matched classes
    by_index: int = 0  # rows whose classes were matched by class index
    unmatched: int = 0  # rows whose classes could not be matched (no agreement counted)
    unshared: int = 0  # rows a version answered with a class the other lacks
    max_abs: float = 0.0  # over the answered copies
    max_rel: float = 0.0
    latency_sum: float = 0.0
    buckets: list[int] = field(default_factory=_no_buckets)  # per bound, not cumulative

    @property
    def answered(self) -> int:
        return self.copies - self.errors

    @classmethod
    def of(cls, seconds: float, comparison: Comparison | None) -> ShadowTally:
        """The tally of one copy."""
        tally = cls()
        tally.add(seconds, comparison)
        return tally

    def add(self, seconds: float, comparison: Comparison | None) -> None:
        """One copy: `comparison` None when the shadow failed on it."""
        self.copies += 1
        self.latency_sum += seconds
        # the first bound >= seconds, as prometheus_client's `value <= bound`
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        if comparison is None:
            self.errors += 1
            return
        self.rows += comparison.rows
        if comparison.by == INDEX:
            self.by_index += comparison.rows
        elif comparison.by == UNMATCHED:
            self.unmatched += comparison.rows
        self.unshared += comparison.unshared
        if comparison.agreed is not None:
            self.agreed = (self.agreed or 0) + comparison.agreed
        self.max_abs = max(self.max_abs, comparison.max_abs)
        self.max_rel = max(self.max_rel, comparison.max_rel)

    def to_row(self, labels: ShadowLabels) -> list[Any]:
        """One JSON array: the labels, then the fields in order."""
        fields = [self.copies, self.errors, self.rows, self.agreed, self.by_index, self.unmatched]
        fields.append(self.unshared)
        return [*labels, *fields, self.max_abs, self.max_rel, self.latency_sum, self.buckets]

    @classmethod
    def from_row(cls, row: list[Any]) -> tuple[ShadowLabels, ShadowTally]:
        """What `to_row` wrote."""
        model, version, shadow, copies, errors, rows, agreed, *rest = row
        by_index, unmatched, unshared, max_abs, max_rel, total, buckets = rest
        tally = cls(int(copies), int(errors), int(rows), None if agreed is None else int(agreed))
        tally.by_index, tally.unmatched = int(by_index), int(unmatched)
        tally.unshared = int(unshared)
        tally.max_abs, tally.max_rel = float(max_abs), float(max_rel)
        tally.latency_sum = float(total)
        if len(buckets) != len(tally.buckets):
            raise ValueError(f"{len(buckets)} latency buckets, not {len(tally.buckets)}")
        tally.buckets = [int(n) for n in buckets]
        return (str(model), str(version), str(shadow)), tally
