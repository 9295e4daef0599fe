"""Where a rollout reads per-version metrics from: the protocol, and a source that reads none.

Two sources implement it: the local gateway's `/metrics` (infra/local/rollout_metrics.py,
cumulative counters, so it keeps the values at each window's start) and CloudWatch
(functions/runtime/rollout/cloudwatch.py, the predict functions' EMF metrics, windowed by
the service itself).
"""

from __future__ import annotations

from typing import Protocol

from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.rollout.decision import StepMetrics


class MetricsSource(Protocol):
    def begin(self, model: str, since: float) -> None:
        """A window starts at `since` (epoch seconds), before the step's traffic moves."""

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = DEFAULT_ALIAS
    ) -> StepMetrics:
        """The two versions' answers since `since` to requests `alias`'s split routed (not
        those pinned to a version, nor another alias's: the request metrics' `alias` label),
        and the candidate's as a shadow of the baseline's."""
