"""A rollout's own moves of its alias, each made only onto the alias record it last read.

A check reads the alias, measures (a scrape of the gateway's `/metrics`, GetMetricData: long on
a busy gateway or on CloudWatch), decides, and only then moves. Unconditional, that move
overwrote a promote or rollback made by hand meanwhile (the operator's brake undone, the
rollout going on to 100%), and a rollback put a candidate promoted by hand back on the
baseline. Each move is now conditional on the record read (its ETag as `If-Match`,
functions/runtime/alias_preconditions.py): when the alias changed since, it is read again; a
move by others (`attention.moved_from`) ends the rollout (MovedByOthers: superseded, the alias
left as that person set it), any other change (an abort's undo racing the driver's step) is
moved onto.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from functions.runtime.alias_preconditions import Precondition, record_bytes, record_etag
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import Conflict, PreconditionFailed
from functions.runtime.registry import Registry
from functions.runtime.rollback_pinned import ROLLED_BACK
from functions.runtime.rollout.attention import moved_from
from functions.runtime.rollout.decision import SHADOW_STAGE
from functions.runtime.rollout.record import RolloutRecord

TRIES = 5  # reads of an alias that keeps changing (by moves that are not others')

# Why an alias record (None: deleted) is not where the rollout left it, or None.
Unmoved = Callable[[RolloutRecord, Mapping[str, Any] | None], str | None]


class MovedByOthers(Exception):
    """Someone else moved the alias since the rollout read it: `reason` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Seen:
    """The alias record as read (None: there is none) and its ETag."""

    record: dict[str, Any] | None
    etag: str | None

    @property
    def target(self) -> AliasTarget | None:
        return None if self.record is None else AliasTarget.of(self.record)

    def when(self) -> Precondition:
        """The condition a move onto this record is made on."""
        if self.etag is None:
            return Precondition(if_none_match="*")
        return Precondition(if_match=self.etag)

    def after(self, moved: dict[str, Any]) -> Seen:
        """The record a conditional move onto this one left: the one it wrote (its bytes are
        what the registry stored), or this one when the move changed nothing."""
        if moved == self.record:
            return self
        return Seen(moved, record_etag(record_bytes(moved)))


def look(registry: Registry, model: str, alias: str) -> Seen:
    """The alias record and its ETag, read now."""
    found = registry.alias_record_tagged(model, alias)
    return Seen(None, None) if found is None else Seen(*found)


def unmoved_since_start(record: RolloutRecord, alias: Mapping[str, Any] | None) -> str | None:
    """Before the first move: why the alias no longer serves what the start found there."""
    if alias is None:
        return "the alias was deleted as the rollout started"
    target = AliasTarget.of(alias)
    before = AliasTarget(record.baseline, shadow=record.prior_shadow)
    if target == before:
        return None
    return f"the alias was moved as the rollout started (it serves {target.describe()}); left as is"


def step_to(
    registry: Registry,
    record: RolloutRecord,
    step: int,
    by: str,
    seen: Seen,
    unmoved: Unmoved = moved_from,
) -> Seen:
    """Send `step`'s traffic (the shadow stage: the candidate shadowed) onto `seen`, if
    `unmoved` finds it where the rollout left it (a resume reads it just now); each move's
    reason the rollout's own (`started_reason`)."""
    model, alias, candidate = record.model, record.alias, record.candidate
    why = record.started_reason
    moved = unmoved(record, seen.record)
    if moved is not None:
        raise MovedByOthers(moved)

    def move(seen: Seen) -> Seen:
        when = seen.when()
        if step == SHADOW_STAGE:
            sample = record.plan.shadow_sample
            return seen.after(
                registry.set_shadow(
                    model, alias, candidate, sample, actor=by, when=when, reason=why
                )
            )
        share = record.plan.steps[step]
        if share >= 1:
            return seen.after(
                registry.set_alias(model, alias, candidate, actor=by, when=when, reason=why)
            )
        weights = {record.baseline: round(1 - share, 6), candidate: share}
        return seen.after(
            registry.set_alias_weights(model, alias, weights, actor=by, when=when, reason=why)
        )

    return _onto(registry, record, seen, move, unmoved)


def restore(
    registry: Registry,
    record: RolloutRecord,
    by: str,
    seen: Seen,
    *,
    rollback: bool = False,
    reason: str | None = None,
) -> Seen:
    """Every request back on the baseline (callers first), then the shadow as it was before
    the rollout, onto `seen`; `rollback`: the candidate failed, and the move is marked as a
    rollback's (an abort is a user's choice to stop, not a rollback of what serves). The rollout touches a shadow of its candidate only (the shadow
    stage takes it over, a step serving the candidate ends it): a user's shadow of the
    candidate comes back at its own sample, the stage's own shadow goes; a shadow of another
    version is left as it is. `reason`: why, kept with each move."""
    model, alias, candidate = record.model, record.alias, record.candidate
    prior, mark = record.prior_shadow, ROLLED_BACK if rollback else None

    def move(seen: Seen) -> Seen:
        target = seen.target
        if target is None:
            return seen
        if target.serves(candidate):
            # A rollback's move is marked (rollback_pinned): an on-call's plain `aiaas rollback`
            # right after it is refused, not taken on back to an older release (review_rev5 3).
            # The user's shadow of the candidate the steps ended comes back in that one record,
            # as a rollback by hand puts it back (`_shadow_back`): in a second, unmarked record
            # the plain rollback went on to the older release all the same.
            ours = prior is not None and prior.version == candidate and target.shadow is None
            moved = registry.set_alias(
                model,
                alias,
                record.baseline,
                actor=by,
                when=seen.when(),
                mark=mark,
                shadow=prior if ours else None,
                reason=reason,
            )
            seen = seen.after(moved)
            target = AliasTarget.of(moved)
        now = target.shadow
        if prior is not None and prior.version != candidate:
            return seen
        if now == prior or (now is not None and now.version != candidate):
            return seen
        # The shadow stage's end (the candidate only shadowed): the rollback's one record.
        version, sample = (None, 1.0) if prior is None else (prior.version, prior.sample)
        shadowed = registry.set_shadow(
            model, alias, version, sample, actor=by, when=seen.when(), mark=mark, reason=reason
        )
        return seen.after(shadowed)

    return _onto(registry, record, seen, move, moved_from)


def _onto(
    registry: Registry,
    record: RolloutRecord,
    seen: Seen,
    move: Callable[[Seen], Seen],
    unmoved: Unmoved,
) -> Seen:
    """`move` made onto `seen`; when the alias changed since, onto the record read again
    unless that change was a move by others (MovedByOthers)."""
    for _ in range(TRIES):
        try:
            return move(seen)
        except PreconditionFailed:
            seen = look(registry, record.model, record.alias)
            why = unmoved(record, seen.record)
            if why is not None:
                raise MovedByOthers(why) from None
    raise Conflict(
        f"alias {record.alias!r} of model {record.model!r} kept changing while the rollout "
        f"moved it ({TRIES} tries); try again"
    )
