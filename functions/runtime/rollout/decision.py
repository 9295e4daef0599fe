"""The pure step of a rollout: given where it is, how long the step has baked and what the
metrics say, advance, hold, roll back or finish. No clock, no store, no transport.

The error rule counts the candidate's 5xx, and its 4xx past what the baseline's 4xx rate in
the same window explains (`_refused_more`). It judges a version before it has answered
`min_requests`: errors are divided by max(requests, min_requests), so a breach is called as
soon as the rate could no longer end under the limit at `min_requests` (one error in the
first 20 requests is 5%), rather than waiting for a full sample while callers keep getting
errors. Latency and agreement need the full sample (a p99 of 3 requests says little;
agreement, which no caller pays for, mid-bake a sample where one row cannot decide it). A
candidate that answers nothing while its share of the traffic would have been `min_requests`
is not being served at all (it failed to load: the function keeps the previous versions
serving and logs why): a breach too.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from functions.runtime.rollout.plan import RolloutPlan

SHADOW_STAGE = -1  # the step index of the agreement stage that comes before the first step


class Action(enum.StrEnum):
    ADVANCE = "advance"
    HOLD = "hold"
    ROLL_BACK = "roll_back"
    DONE = "done"


@dataclass(frozen=True)
class VersionStats:
    """One version's answers in the window: requests, the 5xx among them, their p99, and
    the 4xx among them (`client_errors`: the caller's, unless the other version takes them)."""

    requests: float = 0
    errors: float = 0
    p99_ms: float | None = None
    client_errors: float = 0
    # The latency histogram bucket the p99 lies in, in ms, when it was read from one (a
    # gateway's /metrics): the p99 is interpolated within it, so it is known to that width.
    p99_bucket_ms: tuple[float, float] | None = None


@dataclass(frozen=True)
class ShadowStats:
    """The candidate as a shadow: copies it answered, failed on, rows compared and agreed."""

    copies: float = 0
    errors: float = 0
    rows: float = 0
    agreed: float | None = None  # None: the model gives no labels to agree on
    by_index: float = 0  # rows whose classes, named differently, were matched by class index


@dataclass(frozen=True)
class StepMetrics:
    baseline: VersionStats
    candidate: VersionStats
    shadow: ShadowStats | None = None


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(plan: RolloutPlan, step: int, baked_s: float, metrics: StepMetrics) -> Decision:
    """What to do now, `baked_s` seconds into step `step` (SHADOW_STAGE: the shadow stage)."""
    baked = baked_s >= plan.settle_s + plan.bake_s
    shadowing = step == SHADOW_STAGE
    breach = _shadow_breach(plan, metrics, baked) if shadowing else _breach(plan, metrics)
    if breach is not None:
        return Decision(Action.ROLL_BACK, breach)
    if baked_s < plan.settle_s:
        return Decision(
            Action.HOLD,
            f"settling: {baked_s:.0f} of {plan.settle_s:g} s for every server to read the moved "
            f"alias (its TTL), then the {plan.bake_s:g} s bake",
        )
    if not baked:
        return Decision(Action.HOLD, f"baking: {baked_s - plan.settle_s:.0f} of {plan.bake_s:g} s")
    # A candidate that has answered nothing yet may still be loading: a server loads a new
    # canary off the request path and gives its share to the baseline meanwhile (warming.py),
    # so waiting costs callers nothing. Judged "not served" only once the step has baked twice
    # over: a 1 s bake rolled back a healthy candidate whose session took ~1 s to make.
    starved = _starved(plan, step, metrics) if baked_s >= plan.settle_s + 2 * plan.bake_s else None
    if starved is not None:
        return Decision(Action.ROLL_BACK, starved)
    seen = metrics.shadow.copies if step == SHADOW_STAGE and metrics.shadow else None
    answered = metrics.candidate.requests if seen is None else seen
    needed = max(plan.min_requests, 1)  # a stored plan of 0 (refused since) advanced on none
    if answered < needed:
        return Decision(
            Action.HOLD, f"baked; waiting for traffic: {answered:.0f} of {needed} requests"
        )
    if step == len(plan.steps) - 1:
        return Decision(Action.DONE, "the last step baked within every limit")
    if shadowing:
        return Decision(
            Action.ADVANCE, f"the shadow stage baked within every limit{_agreed(metrics)}"
        )
    return Decision(Action.ADVANCE, "the step baked within every limit")


def _rate(errors: float, requests: float, min_requests: int) -> float:
    return errors / max(requests, min_requests, 1)


def _breach(plan: RolloutPlan, metrics: StepMetrics) -> str | None:
    candidate = metrics.candidate
    refused = _refused_more(plan, metrics)
    errors = candidate.errors + refused
    rate = _rate(errors, candidate.requests, plan.min_requests)
    if errors and rate > plan.max_error_rate:
        more = (
            f" ({candidate.errors:.0f} 5xx, {refused:.0f} 4xx past the baseline's 4xx rate "
            f"{metrics.baseline.client_errors / metrics.baseline.requests:.1%})"
            if refused
            else ""
        )
        return (
            f"error rate {errors:.0f}/{candidate.requests:.0f} requests{more} is over the "
            f"limit {plan.max_error_rate:g}"
        )
    enough = candidate.requests >= max(plan.min_requests, 1)
    p99 = candidate.p99_ms
    if plan.max_p99_ms is not None and p99 is not None and enough and p99 > plan.max_p99_ms:
        return f"p99 latency {p99:.1f} ms is over the limit {plan.max_p99_ms:g} ms" + _estimated(
            plan.max_p99_ms, candidate.p99_bucket_ms
        )
    return None


def _estimated(limit_ms: float, bucket: tuple[float, float] | None) -> str:
    """What a p99 over the limit is worth when the limit lies inside the histogram bucket the
    p99 was interpolated in: only that the p99 is somewhere in the bucket. A candidate whose
    every request took 11-14 ms was rolled back as "p99 latency 21.7 ms is over the limit
    20 ms", a figure no request came near, with nothing saying it was an estimate."""
    if bucket is None or not bucket[0] < limit_ms < bucket[1]:
        return ""  # the bucket lies wholly over the limit: over it, whatever the p99 in it
    low, high = bucket
    return (
        f" (an estimate: the gateway's latency histogram puts the p99 between {low:g} and "
        f"{high:g} ms, and the limit lies between; a --max-p99-ms on a bucket bound, {low:g} or "
        f"{high:g}, is judged exactly)"
    )


def _refused_more(plan: RolloutPlan, metrics: StepMetrics) -> float:
    """The candidate's 4xx beyond what the baseline's 4xx rate in the same window explains
    (with three standard deviations of room, at least 3), counted as errors: a candidate
    answering 422 to requests the baseline took (a new vocabulary) was rolled out to 100%,
    while callers' own bad requests, refused by both alike, stay theirs. Judged only once the
    baseline answered `min_requests` in the window (at 100% it answers none: the earlier
    steps judged it)."""
    baseline, candidate = metrics.baseline, metrics.candidate
    if not candidate.client_errors or baseline.requests < max(plan.min_requests, 1):
        return 0.0
    share = min(baseline.client_errors / baseline.requests, 1.0)
    expected = candidate.requests * share
    room = 3 * math.sqrt(max(expected, 1.0))  # Poisson's spread; 3 unexplained 4xx at least
    return max(0.0, math.floor(candidate.client_errors - expected - room))


def _shadow_breach(plan: RolloutPlan, metrics: StepMetrics, baked: bool) -> str | None:
    shadow = metrics.shadow or ShadowStats()
    tried = shadow.copies + shadow.errors
    if shadow.errors and _rate(shadow.errors, tried, plan.min_requests) > plan.max_error_rate:
        return (
            f"as a shadow it failed {shadow.errors:.0f} of {tried:.0f} copies (errors, "
            "non-finite answers or answers of another kind: the shadow replay's log says which), "
            f"over the limit {plan.max_error_rate:g}"
        )
    if plan.min_agreement is None or shadow.agreed is None:
        return None
    if shadow.rows < _rows_to_judge(plan, baked):
        return None
    agreement = shadow.agreed / shadow.rows
    if agreement < plan.min_agreement:
        how = ", classes matched by class index" if shadow.by_index else ""
        return (
            f"agreement with the baseline {agreement:.3f} ({shadow.agreed:.0f}/{shadow.rows:.0f} "
            f"rows{how}) is under the limit {plan.min_agreement:g}"
        )
    return None


def _agreed(metrics: StepMetrics) -> str:
    """The agreement the shadow stage was judged on, as its log entry says it."""
    shadow = metrics.shadow
    if shadow is None or shadow.agreed is None or not shadow.rows:
        return ""
    how = ", classes matched by class index" if shadow.by_index else ""
    rate = shadow.agreed / shadow.rows
    return f": agreement {rate:.3f} ({shadow.agreed:.0f}/{shadow.rows:.0f} rows{how})"


def _rows_to_judge(plan: RolloutPlan, baked: bool) -> float:
    """Rows compared before agreement is judged. A shadow answers no caller, so nothing is
    lost by waiting: mid-bake, for a sample where one disagreeing row alone cannot breach the
    limit (50 rows at 0.98), lest a candidate be rolled back on its first unlucky row (it was,
    on "0/1 rows"); once baked, on `min_requests` rows as for every other limit."""
    least = max(plan.min_requests, 1)
    limit = plan.min_agreement or 0.0
    if baked or limit >= 1.0:  # at 1.0 one disagreeing row is a breach however many follow
        return least
    return max(least, math.ceil(1 / (1 - limit)))


def _starved(plan: RolloutPlan, step: int, metrics: StepMetrics) -> str | None:
    """A breach when the candidate answered nothing of a share that should have been enough."""
    if step == SHADOW_STAGE:
        shadow = metrics.shadow or ShadowStats()
        expected = metrics.baseline.requests * plan.shadow_sample
        if shadow.copies + shadow.errors == 0 and expected >= max(plan.min_requests, 1):
            return (
                f"as a shadow it answered none of ~{expected:.0f} sampled copies: it is not "
                "served (does it fail to load? the predict function's log says why), or no "
                "copy was replayed yet (`aiaas serve` replays them at the lowest CPU priority: "
                "on a host whose cores are busy, give a longer --bake)"
            )
        return None
    share = plan.steps[step]
    baseline = metrics.baseline.requests
    # At 100% every request the baseline still answered was the candidate's to answer.
    expected = baseline * share / (1 - share) if share < 1 else baseline
    if metrics.candidate.requests == 0 and expected >= max(plan.min_requests, 1):
        return (
            f"it answered none of ~{expected:.0f} requests expected at {share:.0%}: it is not "
            "served (does it fail to load? the predict function's log says why)"
        )
    return None
