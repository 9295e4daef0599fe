"""A rollout's own rollback is a rollback to the second brake (functions/runtime/rollback_pinned):
the alarm (the rollout's check) rolls a bad candidate back, the on-call reacts with a plain
`aiaas rollback`, and that went on back to an older release, 0, the previous one (review_rev5 3).
The rollout's move back now writes `"rolled_back": true` and the plain rollback is a 409; so
does the move back that gives the user's shadow of the candidate back (it was a second,
unmarked record, and the plain rollback after it went on to 0 all the same)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from functions.runtime.aliases import AliasTarget, Written
from functions.runtime.errors import Conflict
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutState
from tests.rollout_models import publish, rows_disagreeing
from tests.runtime.test_rollout_engine import ACTOR, MODEL, Setup, plan


def released(tmp_path: Path, candidate: str, shadow: float | None) -> Setup:
    """Production moved 0 -> 1 by alice (0 is the older release), shadowing 2 at `shadow`."""
    setup = Setup(tmp_path, candidate)
    publish(setup.registry, tmp_path, MODEL, "0", "healthy")
    for version in ("0", "1"):
        setup.registry.set_alias(MODEL, "production", version, actor="alice")
    if shadow is not None:
        setup.registry.set_shadow(MODEL, "production", "2", shadow, actor="alice")
    return setup


def refused_after(registry: Registry, rolled_back: str, came_from: str) -> None:
    """The alias is the rollout's marked move back to `rolled_back` from `came_from`, in one
    record: the on-call's plain rollback is a 409 and moves nothing, the rollout's own retry
    is answered as it stands, and naming the version moves it on purpose."""
    alias = registry.alias_record(MODEL, "production")
    assert alias is not None and alias.get("rolled_back") is True, alias
    assert AliasTarget.of(alias).describe() == rolled_back
    assert AliasTarget.of(alias["history"][0]).describe() == came_from  # one record back
    with pytest.raises(Conflict) as refused:
        registry.rollback(MODEL, "production", actor="oncall")
    said = re.escape(f"was rolled back to {rolled_back} from {came_from} by {ACTOR} (rollout ")
    assert re.search(said + r"\w+\) \d+ s ago", str(refused.value)), refused.value
    written = Written()
    retried = registry.rollback(MODEL, "production", actor=alias["updated_by"], written=written)
    assert not written.written and retried == registry.alias_record(MODEL, "production") == alias
    assert registry.rollback(MODEL, "production", to="0", actor="oncall")["version"] == "0"


def test_a_plain_rollback_just_after_a_rollouts_own_is_refused(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "nan")
    publish(setup.registry, tmp_path, MODEL, "0", "healthy")
    for version in ("0", "1"):  # production moved 0 -> 1 before: 0 is the older release
        setup.registry.set_alias(MODEL, "production", version, actor="alice")
    record = setup.run(plan(bake_s=60.0))
    assert record.state is RolloutState.ROLLED_BACK
    alias = setup.registry.alias_record(MODEL, "production")
    assert alias is not None and alias["version"] == "1" and alias["rolled_back"] is True
    with pytest.raises(Conflict) as refused:
        setup.registry.rollback(MODEL, "production", actor="oncall")
    assert re.search(
        r"was rolled back to 1 from 1 \(90%\) \+ 2 \(10%\) by tester \(rollout \w+\) \d+ s ago",
        str(refused.value),
    ), refused.value
    assert setup.registry.alias(MODEL, "production") == "1"  # not on to 0
    # On purpose, by naming the version, as after any rollback.
    assert setup.registry.rollback(MODEL, "production", to="0", actor="oncall")["version"] == "0"


def test_an_aborted_rollouts_move_back_is_not_a_rollback(tmp_path: Path) -> None:
    """An abort is a user's choice to stop the rollout, not a rollback of what serves: a plain
    rollback after it moves the baseline back as asked (the control role's run does so)."""
    setup = Setup(tmp_path, "healthy")
    publish(setup.registry, tmp_path, MODEL, "0", "healthy")
    for version in ("0", "1"):
        setup.registry.set_alias(MODEL, "production", version, actor="alice")
    setup.engine.start(MODEL, "2", plan(bake_s=60.0), alias="production", actor="tester")
    assert setup.engine.abort(MODEL, "production", "ops").state is RolloutState.ABORTED
    alias = setup.registry.alias_record(MODEL, "production")
    assert alias is not None and alias["version"] == "1" and not alias.get("rolled_back")
    assert setup.registry.rollback(MODEL, "production", actor="oncall")["version"] == "0"


def test_a_rollback_that_gives_back_the_users_shadow_of_the_candidate_is_one_marked_record(
    tmp_path: Path,
) -> None:
    """Production shadowed the candidate 2 before the rollout (the step serving 2 ended that
    shadow): the move back to 1 put the shadow back in a second record, unmarked, and the
    on-call's plain rollback after it went on to 0."""
    setup = released(tmp_path, "nan", 0.2)
    record = setup.run(plan(bake_s=60.0))
    assert record.state is RolloutState.ROLLED_BACK
    refused_after(setup.registry, "1, shadow 2 (20% sampled)", "1 (90%) + 2 (10%)")


def test_a_rollback_of_the_shadow_stage_is_marked(tmp_path: Path) -> None:
    """A candidate caught as a shadow (--min-agreement) never served: its rollback moves only
    the shadow, back to the user's sample. Unmarked, a plain rollback after it went on to 0."""
    setup = released(tmp_path, "other", 0.2)
    stage = plan(min_agreement=0.98, bake_s=60.0)
    setup.engine.start(MODEL, "2", stage, alias="production", actor=ACTOR)
    setup.send(100, rows_disagreeing(0.3, 100))
    assert setup.engine.check(MODEL, "production", ACTOR).state is RolloutState.ROLLED_BACK
    refused_after(setup.registry, "1, shadow 2 (20% sampled)", "1, shadow 2 (100% sampled)")
