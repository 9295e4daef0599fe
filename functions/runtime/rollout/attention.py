"""What a running rollout's record alone does not say, and a person must act on: no driver
judges its live split (`not_watched`), or the alias was moved by hand under it
(`not_in_effect`).

One function for `aiaas rollout status` (its text and its --json) and the control plane's
GET: the text warned of both while the JSON answers said `"state": "running"` and nothing
else, so a pipeline reading them took an orphaned split for a driven one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from functions.runtime.aliases import SMALLEST, WEIGHT_DIGITS, AliasTarget
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
    found = registry.alias_record_tagged(record.model, record.alias)
    return moved_from(record, None if found is None else found[0])


def moved_from(record: RolloutRecord, alias_record: Mapping[str, Any] | None) -> str | None:
    """Why `alias_record` (the alias's record as read; None: deleted) is not what this rollout
    set at its step, or None. The whole split is compared, weight and shadow too: a person who
    cut the canary from 10% to 1% moved the alias as much as one who promoted, and the next step
    overwrote that split. A step this rollout wrote last is its own, not a move by others: a
    check or an abort that read the rollout's record just before its driver stepped."""
    if alias_record is None:
        return "the alias was deleted"
    target = AliasTarget.of(alias_record)
    stepped = written_by(record, alias_record) and target.serves(record.candidate)
    if stepped or serves_step(record, target):
        return None
    return f"the alias was moved outside the rollout (it serves {target.describe()}); left as is"


def serves_step(record: RolloutRecord, target: AliasTarget) -> bool:
    """Whether `target` sends traffic as the rollout's current step set it."""
    baseline, candidate = record.baseline, record.candidate
    if record.step == SHADOW_STAGE:
        shadow = target.shadow
        if shadow is None or target.canary is not None or target.version != baseline:
            return False
        return shadow.version == candidate and _same(shadow.sample, record.plan.shadow_sample)
    share = record.share()
    if share >= 1:
        return target.version == candidate and target.canary is None
    weights = target.weights() or {}
    return set(weights) == {baseline, candidate} and _same(weights[candidate], share)


def written_by(record: RolloutRecord, alias_record: Mapping[str, Any]) -> bool:
    """Whether the alias's latest move is this rollout's ("<actor> (rollout <id>)")."""
    return str(alias_record.get("updated_by") or "").endswith(f"(rollout {record.id})")


def _same(weight: float, share: float) -> bool:
    """A share (or sample) as the alias record keeps it: rounded to WEIGHT_DIGITS."""
    return math.isclose(weight, round(share, WEIGHT_DIGITS), abs_tol=SMALLEST / 2)
