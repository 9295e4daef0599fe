"""A rollout's own rollback is a rollback to the second brake (functions/runtime/rollback_pinned):
the alarm (the rollout's check) rolls a bad candidate back, the on-call reacts with a plain
`aiaas rollback`, and that went on back to an older release, 0, the previous one (review_rev5 3).
The rollout's move back now writes `"rolled_back": true` and the plain rollback is a 409."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from functions.runtime.errors import Conflict
from functions.runtime.rollout.record import RolloutState
from tests.rollout_models import publish
from tests.runtime.test_rollout_engine import MODEL, Setup, plan


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
