"""A rollout state machine execution drives its own rollout (the `id` the control plane starts
it with): once that rollout is aborted and another started on the alias, its next task ends it
in `Stopped`, and its abort (after failed checks) leaves the new rollout running. It used to
adopt the new one: two executions judged it, and the old one's abort ended it."""

from __future__ import annotations

import json

from functions.rollout.service import dispatch
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.record import RolloutState
from infra.cli.rollout_commands import _NoMetrics
from tests.functions.test_rollout_state_machine import ASL, Walker
from tests.runtime.test_rollout_replaced import (
    ALIAS,
    ALICE,
    MODEL,
    assert_bobs_runs_untouched,
    bob_replaces,
    registry,
)

__all__ = ["registry"]  # the fixture: ro 1 and 2, production on 1


def test_an_execution_whose_rollout_was_replaced_stops_and_aborts_nothing(
    registry: Registry,
) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="control-plane")
    bobs = bob_replaces(registry)
    task = {"model": MODEL, "alias": ALIAS, "id": alices.id}
    answer = dispatch(engine, {"aiaas_rollout": "check", **task})
    assert (answer["state"], answer["id"]) == ("replaced", alices.id)
    choice = json.loads(ASL.read_text())["States"]["Running?"]
    assert Walker.choose(choice, answer) == "Stopped"
    why = "the checks failed past their retries"
    aborted = dispatch(engine, {"aiaas_rollout": "abort", **task, "why": why})
    assert (aborted["state"], aborted["id"]) == ("replaced", alices.id)
    assert_bobs_runs_untouched(registry, bobs)
    own = dispatch(engine, {"aiaas_rollout": "abort", **task, "id": bobs.id, "why": why})
    assert own["state"] == RolloutState.ABORTED.value  # its own rollout, it still aborts
