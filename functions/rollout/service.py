"""What one Step Functions task asks of a rollout: `{"aiaas_rollout": "check", "model",
"alias"}` -> the rollout's state and how long to wait before the next check.

The engine (functions/runtime/rollout) does the work: read the record, measure the step on
CloudWatch, move the alias. The execution carries only the model and alias: the record in the
registry is the state, so an execution that is stopped and started again resumes where the
record is, and `aiaas rollout abort` (or the control plane) ends the loop at its next check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest
from functions.runtime.rollout.engine import RolloutEngine

ACTOR = "aws-step-functions"


def dispatch(engine: RolloutEngine, event: Mapping[str, Any]) -> dict[str, Any]:
    """One task: check the rollout and say what the state machine does next."""
    if event.get("aiaas_rollout") != "check":
        raise BadRequest(f'expected {{"aiaas_rollout": "check", ...}}; got keys {sorted(event)}')
    model, alias = names.model_name(event.get("model")), names.alias_name(event.get("alias"))
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
