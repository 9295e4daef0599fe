"""What one Step Functions task asks of a rollout: `{"aiaas_rollout": "check", "model",
"alias"}` -> the rollout's state and how long to wait before the next check; `"abort"` (with
`why`) when the checks failed past the state machine's retries.

The engine (functions/runtime/rollout) does the work: read the record, measure the step on
CloudWatch, move the alias. The execution carries only the model and alias: the record in the
registry is the state, so an execution that is stopped and started again resumes where the
record is, and `aiaas rollout abort` (or the control plane) ends the loop at its next check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest, Conflict
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.record import RolloutRecord

ACTOR = "aws-step-functions"
WHY_CHARS = 500  # of the failed check's cause, kept in the record's log


def dispatch(engine: RolloutEngine, event: Mapping[str, Any]) -> dict[str, Any]:
    """One task: check the rollout (or abort it, when the checks failed past their retries)
    and say what the state machine does next."""
    action = event.get("aiaas_rollout")
    if action not in ("check", "abort"):
        raise BadRequest(
            f'expected {{"aiaas_rollout": "check" or "abort", ...}}; got keys {sorted(event)}'
        )
    model, alias = names.model_name(event.get("model")), names.alias_name(event.get("alias"))
    if action == "abort":
        record = _abort(engine, model, alias, str(event.get("why") or "")[:WHY_CHARS])
    else:
        record = engine.check(model, alias, ACTOR)
    last = record.log[-1] if record.log else {}
    return {
        "model": model,
        "alias": alias,
        "id": record.id,
        "state": record.state.value,
        "share": record.share(),
        "wait_s": max(1, round(engine.wait_s(record))),
        "reason": str(last.get("message", "")),
    }


def _abort(engine: RolloutEngine, model: str, alias: str, why: str) -> RolloutRecord:
    """Abort after failed checks; a rollout that ended meanwhile (aborted by hand, or the
    failed check had finished it) is left as it is."""
    try:
        return engine.abort(model, alias, ACTOR, f"its checks failed: {why}")
    except Conflict:
        return engine.book.require(model, alias)
