"""The rollout loop, one check at a time: start, check (measure, decide, move traffic), abort.

Whoever drives it (the CLI's loop, a control-plane thread, the AWS Step Functions function)
calls `check` every `poll_s` seconds; each call reads the record and the alias, so a driver
holds no state and two drivers cannot move traffic twice (the record is compare-and-swapped).

Traffic moves through the registry like any promote, so every move is in the alias history
too, made by "<actor> (rollout <id>)" for the reason it was started (a move back: why it
ended); each only onto the alias record the check read
(rollout/moves.py), so a move made by hand meanwhile is never overwritten.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from functions.runtime.alias_pruned import published_target
from functions.runtime.errors import Conflict
from functions.runtime.manifest import utc_now
from functions.runtime.move_checked import check_move
from functions.runtime.move_reason import checked_reason, fitted_reason
from functions.runtime.registry import Registry
from functions.runtime.rollout.attention import moved_from
from functions.runtime.rollout.decision import SHADOW_STAGE, Action, Decision, decide
from functions.runtime.rollout.moves import (
    MovedByOthers,
    Seen,
    look,
    restore,
    step_to,
    unmoved_since_start,
)
from functions.runtime.rollout.plan import MIN_POLL_S, RolloutPlan, poll_seconds
from functions.runtime.rollout.preconditions import RolloutPrecondition
from functions.runtime.rollout.record import (
    HISTORY,
    RolloutBook,
    RolloutRecord,
    RolloutState,
    not_running,
    resumable,
)
from functions.runtime.rollout.source import MetricsSource
from functions.runtime.rollout.startable import startable

log = logging.getLogger("aiaas.rollout")
_ROLL_OUT_PUBLISHED = "roll out a published version"


class RolloutEngine:
    """Runs rollouts of one registry's models, judged on one metrics source."""

    def __init__(
        self,
        registry: Registry,
        source: MetricsSource,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.book = RolloutBook(registry.store)
        self.source = source
        self.clock = clock

    def start(
        self,
        model: str,
        candidate: str,
        plan: RolloutPlan,
        *,
        alias: str,
        actor: str,
        when: RolloutPrecondition | None = None,
        reason: str | None = None,
    ) -> RolloutRecord:
        """Begin: the shadow stage (with `min_agreement`) or the first step's share. `when`: the
        caller's condition on the rollout it last saw (PreconditionFailed, nothing changed);
        `reason`: why, logged and carried by each of its moves of the alias."""
        when, reason = when or RolloutPrecondition(), checked_reason(reason)
        # 404 naming it when not published; a pruned one's said to point "the deployment" at
        # an alias, advice for a pinned caller (a prune racing the start, hunt_races 2)
        published_target(self.registry, model, candidate, _ROLL_OUT_PUBLISHED)
        current = self.book.get(model, alias)
        when.check(model, alias, current)
        not_running(current, model, alias, self.clock())
        try:
            seen, stage = startable(self.registry, model, alias, candidate, plan)
        except Conflict:
            # A start that won a race moves the alias right after it claims the record: name
            # that rollout (and fail the caller's precondition), not "the alias already splits
            # traffic: promote or roll back first", which would stop the winner's rollout.
            current = self.book.get(model, alias)
            when.check(model, alias, current)
            not_running(current, model, alias, self.clock())
            raise
        target = seen.target
        assert target is not None  # refused by startable
        # The candidate's files are its manifest's before anything is written (a 409, exit 3:
        # refused before moving anything), not at the first step's move, which left an
        # "aborted" rollout behind (exit 1). The step's move checks them again: cheap next to
        # a bake, and a file changed in between is caught there too.
        check_move(self.registry, model, alias, [candidate])
        # The metrics read once, as the first step will: a source that cannot be read (a typo
        # in --metrics) is refused before anything is written, not written "started" then
        # "aborted" into the alias's rollout history. The first step opens its own window.
        self.source.begin(model, self.clock())
        now = self.clock()
        record = RolloutRecord(
            id=uuid.uuid4().hex[:12],
            model=model,
            alias=alias,
            baseline=target.version,
            candidate=candidate,
            plan=plan,
            started_at=utc_now(),
            started_by=actor,
            step=SHADOW_STAGE if stage.shadow else 0,
            step_started=now,
            prior_shadow=target.shadow,
            driver=uuid.uuid4().hex[:12],
            started_reason=reason,
        )

        what = f"{target.version} -> {candidate}" + (f" ({when.audit()})" if when else "")
        what += stage.note  # how agreement matches their classes, when not by name

        def claim(current: RolloutRecord | None) -> RolloutRecord:
            when.check(model, alias, current)  # on the record this write replaces
            not_running(current, model, alias, self.clock())
            history = () if current is None else (current.summary(), *current.history)
            started = replace(record, history=history[:HISTORY])
            return started.logged("started", what, actor, at=now, reason=reason)

        claimed = self.book.update(model, alias, claim)
        assert claimed is not None
        try:
            return self._enter(claimed, claimed.step, actor, "started", seen, first=True)
        except Exception as exc:
            # Not left "running" with no one running it (the gateway's metrics unreadable, the
            # store failing): that blocked every later rollout until an abort nobody knew of.
            try:
                self._finish(claimed, RolloutState.ABORTED, f"could not start: {exc}", actor)
            except Exception:  # the caller needs the first error, not this one's
                log.exception("rollout %s of %s@%s: could not end it", claimed.id, model, alias)
            raise

    def check(
        self,
        model: str,
        alias: str,
        actor: str,
        rollout_id: str | None = None,
        driver: str | None = None,
    ) -> RolloutRecord:
        """Measure the running step, decide, and move traffic as decided. With `rollout_id` (a
        driver's own rollout), another rollout found there (its own was aborted and a new one
        started since) is returned as read, untouched: its own driver runs it; so is its own
        rollout when `driver` (the driver's token) is no longer the record's: resumed elsewhere."""
        record = self.book.require(model, alias)
        mine = rollout_id in (None, record.id) and driver in (None, record.driver)
        if not record.running or not mine:
            return record
        seen = look(self.registry, model, alias)  # what a move decided below is made onto
        moved = moved_from(record, seen.record)
        if moved is not None:
            return self._finish(record, RolloutState.SUPERSEDED, moved, actor, move=False)
        now = self.clock()
        metrics = self.source.measure(
            model, record.baseline, record.candidate, record.window, record.alias
        )
        decision = decide(record.plan, record.step, now - record.step_started, metrics)
        checked = {
            "time": utc_now(),
            "at": round(now, 3),  # how fresh the latest check is: status tells a stopped driver
            **asdict(decision),
            "metrics": asdict(metrics),
        }
        if decision.action is Action.ROLL_BACK:
            return self._finish(
                record, RolloutState.ROLLED_BACK, decision.reason, actor, checked, seen=seen
            )
        if decision.action is Action.DONE:
            return self._finish(record, RolloutState.SUCCEEDED, decision.reason, actor, checked)
        if decision.action is Action.ADVANCE:
            return self._advance(record, decision, actor, checked, seen)
        return self._save(record, lambda r: replace(r, last_check=checked))

    def abort(
        self,
        model: str,
        alias: str,
        actor: str,
        why: str = "",
        when: RolloutPrecondition | None = None,
        reason: str | None = None,
    ) -> RolloutRecord:
        """Stop the rollout: traffic back on the baseline (not an alias moved by hand since).
        `reason`: the caller's why, logged (and in the message) and kept with the move back."""
        reason = checked_reason(reason)
        why = "; ".join(w for w in (reason, why) if w)
        record = self.book.require(model, alias)
        if when:
            when.check(model, alias, record)
            condition = when.audit()
            if condition:
                why = f"{why} ({condition})" if why else condition
        if not record.running:
            raise Conflict(
                f"the rollout of {model}@{alias} is not running (it {record.state.value}); "
                "nothing to abort"
            )
        said = f"aborted by {actor}" + (f": {why}" if why else "")
        seen = look(self.registry, model, alias)
        moved = moved_from(record, seen.record)
        if moved is not None:  # a move by hand wins, as the driver's check has it: not undone
            said = f"{said}; {moved}"
        state = RolloutState.ABORTED
        return self._finish(record, state, said, actor, move=moved is None, seen=seen, why=reason)

    def resume(self, model: str, alias: str, actor: str) -> RolloutRecord:
        """Drive a running rollout whose driver stopped (killed, its machine gone): the current
        step bakes again from now, on metrics this driver reads (the window before was the
        stopped driver's). Traffic is not moved; the next check sees if someone else moved it.
        Refused while its driver is heard from (unwatched_after), and by compare-and-swap: of
        two resumes racing, the second reads the first's claim; a stalled old driver finds its
        token replaced and stops. One driver a rollout."""
        now = self.clock()
        resumable(self.book.require(model, alias), now)  # before reading any metrics
        self.source.begin(model, now)

        def claim(current: RolloutRecord | None) -> RolloutRecord:
            record = resumable(current, now, model, alias)
            why = f"{record.stage()} bakes again from now, judged on metrics read from here on"
            resumed = replace(
                record, step_started=now, window_since=now, driver=uuid.uuid4().hex[:12]
            )
            return resumed.logged("resumed", why, actor, at=now)

        claimed = self.book.update(model, alias, claim)
        assert claimed is not None
        if not any(entry.get("event") == "step" for entry in claimed.log):
            # Its driver died between writing the record and moving traffic: move it now (the
            # next check would call the unmoved alias "moved outside the rollout").
            why = "resumed: its first move never made"
            return self._enter(claimed, claimed.step, actor, why, first=True)
        return claimed

    def wait_s(self, record: RolloutRecord) -> float:
        """Seconds until the next check is worth making."""
        plan = record.plan
        left = record.step_started + plan.settle_s + plan.bake_s - self.clock()
        return max(MIN_POLL_S, min(poll_seconds(record.plan), left if left > 0 else 1e9))

    # ---- moving traffic -------------------------------------------------------------------

    def _advance(
        self,
        record: RolloutRecord,
        decision: Decision,
        actor: str,
        checked: dict[str, Any],
        seen: Seen,
    ) -> RolloutRecord:
        step, checked_record = record.step + 1, replace(record, last_check=checked)
        return self._enter(checked_record, step, actor, decision.reason, seen)

    def _enter(
        self,
        record: RolloutRecord,
        step: int,
        actor: str,
        why: str,
        seen: Seen | None = None,
        *,
        first: bool = False,
    ) -> RolloutRecord:
        """Open the metrics window, move the traffic to `step` onto the alias record `seen`
        (`first`: the one the start found, else the one at `record`'s step; None: read now),
        and record it."""
        gone = self._gone(record)
        if gone is not None:
            return gone
        seen = seen or look(self.registry, record.model, record.alias)
        # The window opens before the move: no answer of the new split falls outside it, and a
        # source that cannot be read (a wrong --metrics URL) fails before any traffic moves.
        opened = self.clock()
        self.source.begin(record.model, opened)
        by = f"{actor} (rollout {record.id})"
        model, alias, candidate = record.model, record.alias, record.candidate
        unmoved = unmoved_since_start if first else moved_from
        try:
            seen = step_to(self.registry, record, step, by, seen, unmoved)
        except MovedByOthers as moved:  # by hand while this check measured: that move stands
            return self._finish(record, RolloutState.SUPERSEDED, moved.reason, actor, move=False)
        if step == SHADOW_STAGE:
            what = f"shadowing {candidate} ({record.plan.shadow_sample:.0%} sampled)"
        else:
            what = f"{candidate} at {record.plan.steps[step]:.0%}"
        # The step's clock starts once the move is written: a server that read the alias just
        # before the write ended keeps it a TTL from then, so a clock read before a slow write
        # judged the first seconds after the settle on the split before.
        now = self.clock()
        entered = replace(record, step=step, step_started=now, window_since=opened)
        log.info("rollout %s of %s@%s: %s", record.id, model, alias, what)
        saved = self._save(entered, lambda r: r.logged("step", f"{what} ({why})", actor, at=now))
        if not saved.running and saved.state is not RolloutState.SUCCEEDED:
            try:  # aborted while we moved traffic: undo our move (not one made by hand since)
                restore(self.registry, saved, by, seen, reason=_why_ended(saved))
            except MovedByOthers as moved:
                log.warning("rollout %s of %s@%s: %s", saved.id, model, alias, moved.reason)
        return saved

    def _finish(
        self,
        record: RolloutRecord,
        state: RolloutState,
        reason: str,
        actor: str,
        checked: dict[str, Any] | None = None,
        *,
        move: bool = True,
        seen: Seen | None = None,
        why: str | None = None,
    ) -> RolloutRecord:
        """End the rollout; unless `move` is False, every request back on the baseline, moved
        onto the alias record `seen` (that of the check or abort deciding it; None: read now).
        `why`: its actor's reason (an abort's), logged; the move's, else `reason` fitted."""
        if move and state is not RolloutState.SUCCEEDED:
            gone = self._gone(record)
            if gone is not None:
                return gone
            by = f"{actor} (rollout {record.id})"
            try:
                restore(
                    self.registry,
                    record,
                    by,
                    seen or look(self.registry, record.model, record.alias),
                    rollback=state is RolloutState.ROLLED_BACK,
                    reason=why or fitted_reason(reason),
                )
            except MovedByOthers as moved:  # by hand while the check measured: it stands
                if state is RolloutState.ABORTED:
                    reason = f"{reason}; {moved.reason}"
                else:
                    why = f"{moved.reason} (its check had decided to roll back: {reason})"
                    state, reason = RolloutState.SUPERSEDED, why
        # A success is no warning: `aiaas rollout` printed "WARNING ... succeeded" on stderr.
        level = logging.INFO if state is RolloutState.SUCCEEDED else logging.WARNING
        log.log(
            level,
            "rollout %s of %s@%s %s: %s",
            *(record.id, record.model, record.alias, state.value, reason),
        )
        done = replace(record, state=state, last_check=checked or record.last_check)
        at = self.clock()  # after the traffic moved: every request from here on is the baseline's
        return self._save(done, lambda r: r.logged(state.value, reason, actor, at=at, reason=why))

    def _gone(self, record: RolloutRecord) -> RolloutRecord | None:
        """The record now there when `record`'s rollout no longer runs, else None. Read just
        before traffic moves: a check measures for a while, and meanwhile its rollout may be
        aborted and another started on the same candidate, whose alias this check would move."""
        current = self.book.get(record.model, record.alias)
        if (
            current
            and (current.id, current.driver) == (record.id, record.driver)
            and current.running
        ):
            return None
        return current or record

    def _save(
        self, record: RolloutRecord, change: Callable[[RolloutRecord], RolloutRecord]
    ) -> RolloutRecord:
        """Write `change(record)` unless another writer finished or moved the rollout since."""

        def apply(current: RolloutRecord | None) -> RolloutRecord | None:
            if current is None or current.id != record.id or not current.running:
                return None  # aborted (or replaced) meanwhile: that writer's word stands
            if current.driver != record.driver:
                return None  # resumed by another driver meanwhile: it drives from here
            return change(replace(record, log=current.log, history=current.history))

        saved = self.book.update(record.model, record.alias, apply)
        assert saved is not None
        return saved


def _why_ended(record: RolloutRecord) -> str:
    """Why the rollout ended, as its last log entry says: its actor's reason, else its message."""
    last = record.log[-1] if record.log else {}
    return str(last.get("reason") or fitted_reason(str(last.get("message", "it ended"))))
