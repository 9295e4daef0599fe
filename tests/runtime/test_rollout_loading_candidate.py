"""A candidate that has answered nothing when its bake ends may still be loading: a server
loads a new canary off the request path and gives its share to the baseline meanwhile, so the
step waits a second bake before it calls the candidate "not served". A 1 s bake rolled back a
healthy candidate whose session took ~1 s to make."""

from __future__ import annotations

from functions.runtime.rollout.decision import Action, StepMetrics, VersionStats, decide
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
