"""What one Step Functions task asks of a rollout: `{"aiaas_rollout": "check", "model",
"alias", "id"}` -> the rollout's state and how long to wait before the next check; `"abort"` (with
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
from functions.runtime.errors import BadRequest, Conflict, PreconditionFailed
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.preconditions import RolloutPrecondition
from functions.runtime.rollout.record import RolloutRecord
from functions.runtime.task_errors import cause_text

ACTOR = "aws-step-functions"
REPLACED = "replaced"  # not a record's state: the execution's rollout is no longer the alias's
WHY_CHARS = 500  # of the failed check's cause, kept in the record's log


def dispatch(engine: RolloutEngine, event: Mapping[str, Any]) -> dict[str, Any]:
    """One task: check the rollout (or abort it, when the checks failed past their retries)
    and say what the state machine does next."""
    action = event.get("aiaas_rollout") if isinstance(event, Mapping) else None
    if action not in ("check", "abort"):
        raise BadRequest(
            'expected {"aiaas_rollout": "check" or "abort", ...}; got '
            + (f"keys {sorted(event)}" if isinstance(event, Mapping) else type(event).__name__)
        )
    model, alias = names.model_name(event.get("model")), names.alias_name(event.get("alias"))
    mine = event.get("id")  # the execution's rollout (executions started before it: any)
    mine = None if mine is None else str(mine)
    if action == "abort":
        record = _abort(engine, model, alias, _why(event.get("why")), mine)
    else:
        record = engine.check(model, alias, ACTOR, mine)
    last = record.log[-1] if record.log else {}
    replaced = mine not in (None, record.id)
    return {
        "model": model,
        "alias": alias,
        "id": mine or record.id,
        # Its rollout was aborted and another started since: that one has its own execution.
        "state": REPLACED if replaced else record.state.value,
        "share": record.share(),
        "wait_s": max(1, round(engine.wait_s(record))),
        "reason": str(last.get("message", "")),
    }


def _why(cause: object) -> str:
    """The failed check's cause as the log keeps it. Step Functions gives a Lambda's error as
    the JSON of its error response (errorMessage, errorType, requestId, stackTrace): kept as it
    came, the log held a stack trace's first 500 characters; now "StoreUnreachable: S3 ..."."""
    return cause_text(cause)[:WHY_CHARS]


def _abort(
    engine: RolloutEngine, model: str, alias: str, why: str, mine: str | None
) -> RolloutRecord:
    """Abort after failed checks; a rollout that ended meanwhile (aborted by hand, or the
    failed check had finished it), or one started after it, is left as it is."""
    when = None if mine is None else RolloutPrecondition.running(mine)
    try:
        return engine.abort(model, alias, ACTOR, f"its checks failed: {why}", when)
    except (Conflict, PreconditionFailed):
        return engine.book.require(model, alias)
