"""A candidate that has answered nothing when its bake ends may still be loading: a server
loads a new canary off the request path and gives its share to the baseline meanwhile, so the
step waits a second bake before it calls the candidate "not served". A 1 s bake rolled back a
healthy candidate whose session took ~1 s to make."""

from __future__ import annotations

from functions.runtime.rollout.decision import (
    SHADOW_STAGE,
    Action,
    StepMetrics,
    VersionStats,
    decide,
)
from functions.runtime.rollout.plan import RolloutPlan

PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=10, max_error_rate=0.01, settle_s=5, min_requests=20)
NOTHING_YET = StepMetrics(VersionStats(900), VersionStats(0))  # ~100 expected at 10%


def test_a_candidate_silent_at_the_end_of_its_bake_is_waited_for() -> None:
    decision = decide(PLAN, 0, PLAN.settle_s + PLAN.bake_s, NOTHING_YET)
    assert decision.action is Action.HOLD, decision
    assert "waiting for traffic: 0 of 20" in decision.reason


def test_a_candidate_still_silent_after_a_second_bake_is_not_served() -> None:
    decision = decide(PLAN, 0, PLAN.settle_s + 2 * PLAN.bake_s, NOTHING_YET)
    assert decision.action is Action.ROLL_BACK
    assert decision.reason.startswith("it answered none of ~100 requests expected at 10%")


def test_a_candidate_that_answers_during_the_second_bake_advances() -> None:
    answered = StepMetrics(VersionStats(900), VersionStats(25, 0, 3.0))
    decision = decide(PLAN, 0, PLAN.settle_s + PLAN.bake_s + 2, answered)
    assert decision.action is Action.ADVANCE, decision


def test_a_plan_of_no_minimum_still_waits_for_an_answer() -> None:
    """`--min-requests 0` (refused for new plans since; stored records of older rollouts hold
    it) advanced after one bake on no answer: an unloadable version went to 100%, exit 0."""
    stored = RolloutPlan.from_dict({**PLAN.to_dict(), "min_requests": 0})
    for step in (0, 1):
        decision = decide(stored, step, PLAN.settle_s + PLAN.bake_s, NOTHING_YET)
        assert decision.action is Action.HOLD, decision
        assert "waiting for traffic: 0 of 1" in decision.reason
    decision = decide(stored, 0, PLAN.settle_s + 2 * PLAN.bake_s, NOTHING_YET)
    assert decision.action is Action.ROLL_BACK
    answered = StepMetrics(VersionStats(900), VersionStats(1, 0, 3.0))
    assert decide(stored, 1, PLAN.settle_s + PLAN.bake_s, answered).action is Action.DONE


def test_a_shadow_still_silent_after_a_second_bake_names_both_causes() -> None:
    """A shadow that replayed no copy may have failed to load, or its replay may not have run
    yet: `aiaas serve` replays copies at the lowest CPU priority, and on a host whose cores
    were busy a healthy candidate was rolled back with only "does it fail to load?" said."""
    plan = RolloutPlan(
        steps=(0.1, 1.0),
        bake_s=10,
        max_error_rate=0.01,
        settle_s=5,
        min_requests=20,
        min_agreement=0.9,
    )
    decision = decide(plan, SHADOW_STAGE, plan.settle_s + 2 * plan.bake_s, NOTHING_YET)
    assert decision.action is Action.ROLL_BACK
    assert decision.reason == (
        "as a shadow it answered none of ~900 sampled copies: it is not served (does it fail "
        "to load? the predict function's log says why), or no copy was replayed yet (`aiaas "
        "serve` replays them at the lowest CPU priority: on a host whose cores are busy, give a "
        "longer --bake)"
    )
