"""What a running rollout's record alone does not say, and a person must act on: no driver
judges its live split (`not_watched`), or the alias was moved by hand under it
(`not_in_effect`).

One function for `aiaas rollout status` (its text and its --json) and the control plane's
GET: the text warned of both while the JSON answers said `"state": "running"` and nothing
else, so a pipeline reading them took an orphaned split for a driven one.
"""

from __future__ import annotations

from typing import Any

from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import SHADOW_STAGE
from functions.runtime.rollout.plan import poll_seconds, unwatched_after
from functions.runtime.rollout.record import RolloutRecord


def attention(registry: Registry, record: RolloutRecord, now: float) -> dict[str, Any]:
    """`not_watched` and `not_in_effect`, each None unless the rollout runs and has that
    problem: the keys are always there, so a script tests them rather than their presence."""
    if not record.running:
        return {"not_watched": None, "not_in_effect": None}
    moved = moved_by_others(registry, record)
    return {
        "not_watched": not_watched(record, now),
        "not_in_effect": None if moved is None else moved.removesuffix("; left as is"),
    }


def not_watched(record: RolloutRecord, now: float) -> dict[str, Any] | None:
    """None while its driver is heard from; else how long it has been quiet and the commands
    that end the wait. Quiet past `unwatched_after`, the test a resume is refused by: the
    process driving it was killed (SIGKILL, the machine gone) and the split is live."""
    quiet = record.quiet_s(now)
    if not record.running or quiet < unwatched_after(record.plan):
        return None
    where = f"{record.model} --alias {record.alias}"
    return {
        "quiet_s": round(quiet),
        "check_every_s": poll_seconds(record.plan),
        "resume": f"aiaas rollout resume {where}",
        "abort": f"aiaas rollout abort {where}",
    }


def moved_by_others(registry: Registry, record: RolloutRecord) -> str | None:
    """Why the alias no longer serves what this rollout set, or None if it does."""
    target = registry.alias_target(record.model, record.alias)
    step, candidate = record.step, record.candidate
    if target is None:
        return "the alias was deleted"
    if step == SHADOW_STAGE:
        ok = target.canary is None and target.version == record.baseline
        ok = ok and target.shadow is not None and target.shadow.version == candidate
    elif record.share() < 1:
        ok = target.version == record.baseline and target.canary == candidate
    else:
        ok = target.version == candidate and target.canary is None
    if ok:
        return None
    return f"the alias was moved outside the rollout (it serves {target.describe()}); left as is"
