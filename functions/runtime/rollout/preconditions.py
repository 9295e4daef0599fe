"""Optimistic concurrency on rollouts: a client that read a rollout (its ETag) starts or aborts
one only if that is still the latest rollout, in the state it saw (`If-Match`), or starts one
only if no rollout is running (`If-None-Match: *`).

The record's compare-and-swap already keeps one rollout running per alias, but it does not know
what the caller saw: a stale client aborted an operator's newer rollout, or started one over a
rollout it had never seen finish. The ETag names the rollout and its state (its id and
running/succeeded/...), not its bytes: a running record is rewritten at every check (a tenth
of a bake, 0.2 s locally), so an ETag of the bytes would be stale before a client could send
it, and so is the step: a pipeline that started a rollout aborts *its* rollout at any step.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from functions.runtime.alias_preconditions import header_etags
from functions.runtime.errors import PreconditionFailed
from functions.runtime.rollout.record import RolloutRecord, RolloutState


def rollout_etag(record: RolloutRecord) -> str:
    """The (strong, quoted) ETag of a rollout: it changes when a rollout starts or ends."""
    return _etag(record.id, record.state)


def _etag(rollout_id: str, state: RolloutState) -> str:
    digest = hashlib.sha256(f"{rollout_id}/{state.value}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def describe(record: RolloutRecord) -> str:
    """A rollout as a 412 names it: which one, its state, who started it and when."""
    share = "shadow" if record.step < 0 else f"{record.share():.0%}"
    state = f"running at {share}" if record.running else record.state.value
    return (
        f"rollout {record.id} ({record.baseline} -> {record.candidate}) is {state}, "
        f"started by {record.started_by} at {record.started_at}"
    )


@dataclass(frozen=True)
class RolloutPrecondition:
    """What the caller expects of the alias's rollout record: `if_match` (ETags as sent, or
    "*": a rollout record exists) and/or `if_none_match` ("*": no rollout is running)."""

    if_match: str | None = None
    if_none_match: str | None = None
    own: bool = False  # a driver's guard on its own rollout, not a caller's: not in the log

    @classmethod
    def running(cls, rollout_id: str) -> RolloutPrecondition:
        """Only rollout `rollout_id`, while it runs: what its own driver (the `aiaas rollout`
        process, its state machine execution) may abort, never a rollout started after it."""
        return cls(if_match=_etag(rollout_id, RolloutState.RUNNING), own=True)

    def __bool__(self) -> bool:
        return self.if_match is not None or self.if_none_match is not None

    def check(self, model: str, alias: str, current: RolloutRecord | None) -> None:
        """PreconditionFailed when the record as read (None: none yet) is not the expected one.
        Checked on every read of the record's compare-and-swap: the last is what was changed."""
        what = f"the rollout of {model}@{alias}"
        if self.if_none_match is not None and current is not None and current.running:
            raise PreconditionFailed(f"{what} is not idle (If-None-Match: *): {describe(current)}")
        if self.if_match is None:
            return
        if current is None:
            raise PreconditionFailed(f"{what} does not exist: no rollout of it yet")
        if self.if_match.strip() != "*" and rollout_etag(current) not in header_etags(
            self.if_match
        ):
            raise PreconditionFailed(
                f"{what} changed since you read it: {describe(current)}; read it again "
                f"(aiaas rollout status, or GET its ETag) and retry"
            )

    def audit(self) -> str:
        """The condition as the log keeps it ("" when none was given, or a driver's own: a
        Ctrl-C's abort was logged with an If-Match its user never sent)."""
        if self.own:
            return ""
        given = [("If-Match", self.if_match), ("If-None-Match", self.if_none_match)]
        return ", ".join(f"{name}: {value}" for name, value in given if value is not None)
