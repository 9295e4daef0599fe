"""How long a comparison may take where something kills it at a time limit (the control plane's
function): refused up front when its estimate is over, stopped with an answer at the deadline.

The estimate comes from a probe, the first `PROBE_ROWS` rows scored by both versions: seconds per
row of scoring times the rows still to compare (the file's rows, estimated from its size, up
to `max_rows`), plus the single calls still to time at the probe's seconds per call, plus the
time already spent (loading both versions, reading). Over the limit, a 422 that gives the
numbers, the `max_rows` that would fit, and the CLI, which has no limit. A comparison the
estimate let through is still checked before each batch and each timed call, so a slower
second half ends in the same kind of answer, never in the function's timeout.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.store import ObjectStore

SETTING = "AIAAS_COMPARE_MAX_SECONDS"
SAMPLE_BYTES = 64 * 1024  # read to estimate a text file's bytes per row
PROBE_ROWS = 256  # rows of the first batch scored (by both versions) as the probe
PROBE_CALLS = 8  # single calls timed in the probe; the rest of `latency_calls` after it
HEADROOM = 0.8  # the `max_rows` a refusal suggests fits in this share of the limit: a probe errs


class CompareTooLong(InvalidInput):
    """A comparison that would take, or took, longer than its time limit (422)."""


@dataclass
class CompareBudget:
    """`seconds` from `started` (a `clock` reading); `source` says where the limit comes from."""

    seconds: float
    source: str = SETTING
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)
    advice: str = "run `aiaas compare` instead (it reads the store itself and has no time limit)"

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def check_estimate(
        self, probe: Probe, rows_done: int, rows_expected: int, calls_left: int
    ) -> None:
        """A 422 with the numbers when the rest, at the probe's rates, would end past the limit."""
        spent = self.elapsed()
        rows_left = max(rows_expected - rows_done, 0)
        scoring = rows_left * probe.per_row
        timing = calls_left * probe.per_call
        total = spent + scoring + timing
        if total <= self.seconds:
            return
        room = self.seconds * HEADROOM - spent - timing
        fits = rows_done + int(room / probe.per_row) if probe.per_row > 0 and room > 0 else 0
        raise CompareTooLong(
            f"this comparison would take about {total:.1f} s: {rows_expected:,} rows to score "
            f"with both versions at {probe.per_row * 1e6:.1f} us a row ({scoring:.1f} s), "
            f"{calls_left:,} latency calls at {probe.per_call * 1e3:.2f} ms ({timing:.1f} s), "
            f"and {spent:.1f} s spent loading and probing; the limit is {self.seconds:g} s "
            f"({self.source}): {self._fewer(fits)}{self.advice}"
        )

    def check_deadline(self, rows_done: int, rows_expected: int) -> None:
        """A 422 once the limit has passed (checked between batches and timed calls)."""
        spent = self.elapsed()
        if spent <= self.seconds:
            return
        raise CompareTooLong(
            f"this comparison was stopped after {spent:.1f} s with {rows_done:,} of about "
            f"{rows_expected:,} rows compared (slower than its probe estimated); the limit is "
            f"{self.seconds:g} s ({self.source}): {self._fewer(rows_done // 2)}{self.advice}"
        )

    @staticmethod
    def _fewer(fits: int) -> str:
        if fits < 1:
            return ""
        return f"compare fewer rows (max_rows {fits:,} fits, or fewer latency_calls), or "


@dataclass(frozen=True)
class Probe:
    """Rates measured on the first batch: seconds per row scored by both versions and compared,
    and seconds per timed call pair (one call to each version)."""

    per_row: float
    per_call: float

    @classmethod
    def measured(cls, seconds: float, rows: int, calls: tuple[list[float], list[float]]) -> Probe:
        """From `seconds` spent on a batch of `rows`, of which `calls` were the timed calls."""
        timed = sum(calls[0]) + sum(calls[1])
        pairs = [a + b for a, b in zip(calls[0], calls[1], strict=False)]
        # The median: one call of a few that a busy machine delays would double a mean.
        per_call = float(np.median(pairs)) if pairs else 0.0
        return cls(max(seconds - timed, 0.0) / max(rows, 1), per_call)


def expected_rows(store: ObjectStore, key: str, max_rows: int) -> int:
    """Rows the comparison will score: the file's, estimated from its size and its first
    64 KiB for text, read from the header for .npy; `max_rows` at most (and where unknown)."""
    lowered = key.lower()
    if lowered.endswith(".gz"):
        return max_rows  # its size says little about its rows: the upper bound
    size = store.head(key).size
    with store.open_read(key, 0, min(size, SAMPLE_BYTES)) as stream:
        sample = stream.read(SAMPLE_BYTES)
    if lowered.endswith(".npy"):
        return min(_npy_rows(sample) or max_rows, max_rows)
    lines = sample.count(b"\n") or 1
    found = lines if len(sample) >= size else int(size * lines / max(len(sample), 1)) + 1
    header = 1 if lowered.endswith(".csv") else 0
    return max(min(found - header, max_rows), 1)


def _npy_rows(header: bytes) -> int | None:
    stream = io.BytesIO(header)
    try:
        major, _ = np.lib.format.read_magic(stream)
        shape = (
            np.lib.format.read_array_header_1_0(stream)
            if major == 1
            else np.lib.format.read_array_header_2_0(stream)
        )[0]
    except (ValueError, OSError):
        return None
    return int(shape[0]) if shape else 1
