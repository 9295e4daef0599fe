"""The rollout loop, one check at a time: start, check (measure, decide, move traffic), abort.

Whoever drives it (the CLI's loop, a control-plane thread, the AWS Step Functions function)
calls `check` every `poll_s` seconds; each call reads the record and the alias, so a driver
holds no state and two drivers cannot move traffic twice (the record is compare-and-swapped).

Traffic moves through the registry like any promote, so every move is in the alias history
too, made by "<actor> (rollout <id>)".
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import Conflict, InvalidInput
from functions.runtime.manifest import utc_now
from functions.runtime.refs import alias_key
from functions.runtime.registry import Registry
from functions.runtime.rollout.agreement import AgreementStage, agreement_stage
from functions.runtime.rollout.attention import moved_by_others
from functions.runtime.rollout.decision import SHADOW_STAGE, Action, Decision, decide
from functions.runtime.rollout.plan import MIN_POLL_S, RolloutPlan, poll_seconds, settle_after
from functions.runtime.rollout.preconditions import RolloutPrecondition
from functions.runtime.rollout.record import (
    RolloutBook,
    RolloutRecord,
    RolloutState,
    not_running,
    resumable,
)
from functions.runtime.rollout.same_inputs import difference, labelled
from functions.runtime.rollout.source import MetricsSource
from functions.runtime.settings import RuntimeSettings

log = logging.getLogger("aiaas.rollout")


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
    ) -> RolloutRecord:
        """Begin: the shadow stage (with `min_agreement`) or the first step's share. `when`: the
        caller's condition on the rollout it last saw (PreconditionFailed, nothing changed)."""
        when = when or RolloutPrecondition()
        self.registry.manifest(model, candidate)  # 404 naming it when not published
        current = self.book.get(model, alias)
        when.check(model, alias, current)
        not_running(current, model, alias)
        try:
            target, stage = self._startable(model, alias, candidate, plan)
        except Conflict:
            # A start that won a race moves the alias right after it claims the record: name
            # that rollout (and fail the caller's precondition), not "the alias already splits
            # traffic: promote or roll back first", which would stop the winner's rollout.
            current = self.book.get(model, alias)
            when.check(model, alias, current)
            not_running(current, model, alias)
            raise
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
        )

        what = f"{target.version} -> {candidate}" + (f" ({when.audit()})" if when else "")
        what += stage.note  # how agreement matches their classes, when not by name

        def claim(current: RolloutRecord | None) -> RolloutRecord:
            when.check(model, alias, current)  # on the record this write replaces
            not_running(current, model, alias)
            history = () if current is None else (current.summary(), *current.history)
            started = replace(record, history=history[:20])
            return started.logged("started", what, actor, at=now)

        claimed = self.book.update(model, alias, claim)
        assert claimed is not None
        try:
            return self._enter(claimed, claimed.step, actor, "started")
        except Exception as exc:
            # Not left "running" with no one running it (the gateway's metrics unreadable, the
            # store failing): that blocked every later rollout until an abort nobody knew of.
            try:
                self._finish(claimed, RolloutState.ABORTED, f"could not start: {exc}", actor)
            except Exception:  # the caller needs the first error, not this one's
                log.exception("rollout %s of %s@%s: could not end it", claimed.id, model, alias)
            raise

    def _startable(
        self, model: str, alias: str, candidate: str, plan: RolloutPlan
    ) -> tuple[AliasTarget, AgreementStage]:
        target = self.registry.alias_target(model, alias)
        if target is None:
            raise Conflict(
                f"alias {alias!r} of model {model!r} points at no version yet: promote a first "
                "version to it (a rollout moves traffic from one version to another)"
            )
        if target.canary is not None:
            raise Conflict(
                f"alias {alias!r} of model {model!r} already splits traffic "
                f"({target.describe()}): promote or roll back first"
            )
        if target.version == candidate:
            raise Conflict(f"alias {alias!r} of model {model!r} already serves {candidate!r}")
        base, other = (self.registry.manifest(model, v) for v in (target.version, candidate))
        why = difference(base, other)
        if why is not None:  # its share of the callers would get a 422 each, the rollout go on
            raise InvalidInput(
                f"version {candidate} of {model} does not take the requests {target.version} "
                f"takes ({why}): the callers of {alias!r} would get a 422 from it; publish a "
                "candidate with the same inputs"
            )
        if plan.min_agreement is not None:  # judged on labels: a regressor gives none
            labelled(model, {target.version: base, candidate: other})
        stage, shadow = agreement_stage(plan, base, other), target.shadow
        if stage.shadow and shadow is not None and shadow.version != candidate:
            # Without a shadow stage the alias's shadow is not in the way: it stays, as a
            # promote keeps it.
            raise Conflict(
                f"alias {alias!r} of model {model!r} shadows version {shadow.version!r}; "
                "a rollout with --min-agreement shadows the candidate: remove that shadow first"
            )
        return target, stage

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
        moved = self.moved_by_others(record)
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
            return self._finish(record, RolloutState.ROLLED_BACK, decision.reason, actor, checked)
        if decision.action is Action.DONE:
            return self._finish(record, RolloutState.SUCCEEDED, decision.reason, actor, checked)
        if decision.action is Action.ADVANCE:
            return self._advance(record, decision, actor, checked)
        return self._save(record, lambda r: replace(r, last_check=checked))

    def abort(
        self,
        model: str,
        alias: str,
        actor: str,
        why: str = "",
        when: RolloutPrecondition | None = None,
    ) -> RolloutRecord:
        """Stop the rollout: traffic back on the baseline (not an alias moved by hand since)."""
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
        reason = f"aborted by {actor}" + (f": {why}" if why else "")
        moved = self.moved_by_others(record)
        if moved is not None:  # a move by hand wins, as the driver's check has it: not undone
            return self._finish(
                record, RolloutState.ABORTED, f"{reason}; {moved}", actor, move=False
            )
        return self._finish(record, RolloutState.ABORTED, reason, actor)

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
            return self._enter(claimed, claimed.step, actor, "resumed: its first move never made")
        return claimed

    def wait_s(self, record: RolloutRecord) -> float:
        """Seconds until the next check is worth making."""
        plan = record.plan
        left = record.step_started + plan.settle_s + plan.bake_s - self.clock()
        return max(MIN_POLL_S, min(poll_seconds(record.plan), left if left > 0 else 1e9))

    # ---- moving traffic -------------------------------------------------------------------

    def _advance(
        self, record: RolloutRecord, decision: Decision, actor: str, checked: dict[str, Any]
    ) -> RolloutRecord:
        step = record.step + 1
        return self._enter(replace(record, last_check=checked), step, actor, decision.reason)

    def _enter(self, record: RolloutRecord, step: int, actor: str, why: str) -> RolloutRecord:
        """Open the metrics window, move the traffic to `step`, and record it."""
        gone = self._gone(record)
        if gone is not None:
            return gone
        # The window opens before the move: no answer of the new split falls outside it, and a
        # source that cannot be read (a wrong --metrics URL) fails before any traffic moves.
        opened = self.clock()
        self.source.begin(record.model, opened)
        by = f"{actor} (rollout {record.id})"
        model, alias, candidate = record.model, record.alias, record.candidate
        if step == SHADOW_STAGE:
            self.registry.set_shadow(model, alias, candidate, record.plan.shadow_sample, actor=by)
            what = f"shadowing {candidate} ({record.plan.shadow_sample:.0%} sampled)"
        else:
            share = record.plan.steps[step]
            if share < 1:
                weights = {record.baseline: round(1 - share, 6), candidate: share}
                self.registry.set_alias_weights(model, alias, weights, actor=by)
            else:
                self.registry.set_alias(model, alias, candidate, actor=by)
            what = f"{candidate} at {share:.0%}"
        # The step's clock starts once the move is written: a server that read the alias just
        # before the write ended keeps it a TTL from then, so a clock read before a slow write
        # judged the first seconds after the settle on the split before.
        now = self.clock()
        entered = replace(record, step=step, step_started=now, window_since=opened)
        log.info("rollout %s of %s@%s: %s", record.id, model, alias, what)
        saved = self._save(entered, lambda r: r.logged("step", f"{what} ({why})", actor, at=now))
        if not saved.running and saved.state is not RolloutState.SUCCEEDED:
            self._restore(saved, actor)  # aborted while we moved traffic: undo our move
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
    ) -> RolloutRecord:
        if move and state is not RolloutState.SUCCEEDED:
            gone = self._gone(record)
            if gone is not None:
                return gone
            self._restore(record, actor)
        # A success is no warning: `aiaas rollout` printed "WARNING ... succeeded" on stderr.
        level = logging.INFO if state is RolloutState.SUCCEEDED else logging.WARNING
        log.log(
            level,
            "rollout %s of %s@%s %s: %s",
            *(record.id, record.model, record.alias, state.value, reason),
        )
        done = replace(record, state=state, last_check=checked or record.last_check)
        at = self.clock()  # after the traffic moved: every request from here on is the baseline's
        return self._save(done, lambda r: r.logged(state.value, reason, actor, at=at))

    def _restore(self, record: RolloutRecord, actor: str) -> None:
        """Every request back on the baseline (callers first), then the shadow as it was before
        the rollout. The rollout touches a shadow of its candidate only (the shadow stage takes
        it over, a step serving the candidate ends it): a user's shadow of the candidate comes
        back at its own sample (it was lost before), the stage's own shadow goes; a shadow of
        another version is left as it is."""
        by = f"{actor} (rollout {record.id})"
        model, alias, candidate = record.model, record.alias, record.candidate
        target = self.registry.alias_target(model, alias)
        if target is None:
            return
        if target.serves(candidate):
            self.registry.set_alias(model, alias, record.baseline, actor=by)
        prior, now = record.prior_shadow, target.shadow
        if prior is not None and prior.version != candidate:
            return
        if now == prior or (now is not None and now.version != candidate):
            return
        if prior is None:
            self.registry.set_shadow(model, alias, None, actor=by)
        else:
            self.registry.set_shadow(model, alias, prior.version, prior.sample, actor=by)

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

    def moved_by_others(self, record: RolloutRecord) -> str | None:
        """Why the alias no longer serves what this rollout set, or None if it does."""
        return moved_by_others(self.registry, record)


def settle_s(registry: Registry, model: str, alias: str) -> float:
    """How long a moved alias takes to reach every server, so a step is not judged before: 0
    where servers stat the alias record on each request (a directory store), else
    AIAAS_ALIAS_TTL (60 s; on S3 a server re-reads an alias only that often) and the re-read's
    own time. Steps judged without it passed, or rolled a candidate back as "not served", on
    traffic not yet moved."""
    if registry.store.stamp(alias_key(model, alias)) is not None:
        return 0.0
    return settle_after(RuntimeSettings.from_env().alias_ttl)
