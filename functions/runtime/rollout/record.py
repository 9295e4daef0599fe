"""Rollout records: `models/<name>/rollouts/<alias>.json` in the registry's store holds the
alias's latest rollout (running or finished) with its log, and summaries of the ones before.

One running rollout per model and alias: the record is written by compare-and-swap, so two
starts (or a step and an abort) racing each other cannot both win; the loser re-reads and is
refused or re-decides. Every write names who made it, as the alias history does.
"""

from __future__ import annotations

import enum
import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from functions.runtime import names
from functions.runtime.aliases import Shadow
from functions.runtime.errors import BadRequest, Conflict, CorruptRecord, NotFound
from functions.runtime.manifest import utc_now
from functions.runtime.rollout.plan import RolloutPlan, unwatched_after
from functions.runtime.store import ObjectChanged, ObjectStore

LOG_ENTRIES = 100  # a record keeps its newest log entries (a step logs a few)
HISTORY = 20  # summaries of earlier rollouts kept in the record
WRITE_TRIES = 20


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"
    SUPERSEDED = "superseded"  # someone else moved the alias meanwhile; traffic left as it was


@dataclass(frozen=True)
class RolloutRecord:
    """One rollout of `candidate` onto `alias` (which served `baseline` when it started)."""

    id: str
    model: str
    alias: str
    baseline: str
    candidate: str
    plan: RolloutPlan
    started_at: str
    started_by: str
    state: RolloutState = RolloutState.RUNNING
    step: int = 0  # index into plan.steps; -1 (decision.SHADOW_STAGE): the shadow stage
    step_started: float = 0.0  # epoch seconds the step's move was written: it settles from here
    # Epoch seconds the step's metrics window opened, just before its move (None in records
    # written before this field: step_started).
    window_since: float | None = None
    updated_at: str = ""
    last_check: dict[str, Any] | None = None  # the latest decision and the metrics behind it
    # The alias's shadow when the rollout started, put back when it rolls back or is aborted
    # (None: it had none, or a record written before this field).
    prior_shadow: Shadow | None = None
    log: tuple[dict[str, Any], ...] = ()
    history: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    # The token of the one process (or state machine) driving it: a start sets it, a resume
    # replaces it, and a driver whose token is gone stops ("" in records before this field).
    driver: str = ""
    # Why it was started (`--reason`, a start's `reason`; None: not said, or a record before
    # this field): each of its moves of the alias carries it into the alias history.
    started_reason: str | None = None

    @property
    def running(self) -> bool:
        return self.state is RolloutState.RUNNING

    @property
    def window(self) -> float:
        """When the step's metrics window opened."""
        return self.step_started if self.window_since is None else self.window_since

    def share(self) -> float:
        """The candidate's share of the traffic now (0 in the shadow stage)."""
        return self.plan.steps[self.step] if self.step >= 0 else 0.0

    def logged(
        self, event: str, message: str, actor: str, at: float, reason: str | None = None
    ) -> RolloutRecord:
        """With a log entry; `at` is its epoch time (the ISO `time` is to the second);
        `reason`: why its actor did it, as they said it (a start's or an abort's)."""
        now = utc_now()
        entry = {"time": now, "at": round(at, 3), "event": event, "message": message, "by": actor}
        if reason is not None:
            entry["reason"] = reason
        return replace(self, log=(*self.log, entry)[-LOG_ENTRIES:], updated_at=now)

    def stage(self) -> str:
        """The step it is on, in words."""
        return "the shadow stage" if self.step < 0 else f"the {self.share():.0%} step"

    def quiet_s(self, now: float) -> float:
        """Seconds since its driver was last heard of: its latest check or log entry."""
        times = [float(e.get("at", 0)) for e in self.log[-1:]]
        times.append(float((self.last_check or {}).get("at", 0)))
        return now - max(times)

    def driven_by(self) -> str:
        """Who started or last resumed it: the actor of its driver."""
        claims = [e for e in self.log if e.get("event") in ("started", "resumed")]
        return str(claims[-1].get("by", "")) if claims else self.started_by

    def summary(self) -> dict[str, Any]:
        """What the history keeps of a finished rollout."""
        last = self.log[-1] if self.log else {}
        return {
            "id": self.id,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "state": self.state.value,
            "started_at": self.started_at,
            "started_by": self.started_by,
            "started_reason": self.started_reason,
            "finished_at": self.updated_at,
            "reason": last.get("message", ""),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "alias": self.alias,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "plan": self.plan.to_dict(),
            "state": self.state.value,
            "step": self.step,
            "share": self.share(),
            "step_started": self.step_started,
            "window_since": self.window_since,
            "started_at": self.started_at,
            "started_by": self.started_by,
            "started_reason": self.started_reason,
            "updated_at": self.updated_at,
            "last_check": self.last_check,
            "prior_shadow": None if self.prior_shadow is None else self.prior_shadow.record(),
            "log": list(self.log),
            "history": list(self.history),
            "driver": self.driver,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> RolloutRecord:
        return cls(
            id=str(doc["id"]),
            model=names.model_name(doc["model"]),
            alias=names.alias_name(doc["alias"]),
            baseline=names.version_name(doc["baseline"]),
            candidate=names.version_name(doc["candidate"]),
            plan=RolloutPlan.from_dict(doc["plan"]),
            started_at=str(doc["started_at"]),
            started_by=str(doc["started_by"]),
            state=RolloutState(doc["state"]),
            step=int(doc["step"]),
            step_started=float(doc["step_started"]),
            window_since=None if doc.get("window_since") is None else float(doc["window_since"]),
            updated_at=str(doc.get("updated_at", "")),
            last_check=doc.get("last_check"),
            prior_shadow=None
            if doc.get("prior_shadow") is None
            else Shadow.parse(doc["prior_shadow"]),
            log=tuple(doc.get("log", ())),
            history=tuple(doc.get("history", ())),
            driver=str(doc.get("driver") or ""),
            started_reason=_text_or_none(doc.get("started_reason")),
        )


def _text_or_none(value: object) -> str | None:
    """A reason as read: text, else none (a record edited by hand is not refused for it)."""
    return value if isinstance(value, str) else None


def rollout_key(name: str, alias: str) -> str:
    return f"models/{names.model_name(name)}/rollouts/{names.alias_name(alias)}.json"


class RolloutBook:
    """Reads and writes rollout records on one store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def get(self, name: str, alias: str) -> RolloutRecord | None:
        try:
            raw = self.store.get_bytes(rollout_key(name, alias))
        except NotFound:
            return None
        return _parse(name, alias, raw)

    def require(self, name: str, alias: str) -> RolloutRecord:
        found = self.get(name, alias)
        if found is None:
            raise NotFound(f"no rollout of model {name!r} on alias {alias!r}")
        return found

    def all(self, name: str) -> list[RolloutRecord]:
        """The latest rollout of each alias of `name` that had one."""
        prefix = f"models/{names.model_name(name)}/rollouts"
        found = []
        for key in self.store.list_keys(prefix):
            alias = key.rsplit("/", 1)[-1].removesuffix(".json")
            if names.is_alias_name(alias):
                record = self.get(name, alias)
                if record is not None:
                    found.append(record)
        return found

    def update(
        self,
        name: str,
        alias: str,
        change: Callable[[RolloutRecord | None], RolloutRecord | None],
    ) -> RolloutRecord | None:
        """Compare-and-swap: `change` maps the record as read to the one to write (None: write
        nothing); re-run on a record another writer changed meanwhile."""
        key = rollout_key(name, alias)
        for attempt in range(WRITE_TRIES):
            try:
                raw, etag = self.store.read_versioned(key)
                current: RolloutRecord | None = _parse(name, alias, raw)
            except NotFound:
                current, etag = None, None
            new = change(current)
            if new is None:
                return current
            data = json.dumps(new.to_dict(), indent=2).encode()
            try:
                self.store.put_bytes(key, data, if_absent=etag is None, if_match=etag)
                return new
            except (ObjectChanged, NotFound):
                time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.25)))  # noqa: S311
        raise Conflict(f"the rollout record of {name}@{alias} kept changing; try again")


def resumable(
    current: RolloutRecord | None, now: float, model: str = "", alias: str = ""
) -> RolloutRecord:
    """The record, when a resume may take it over: running, and its driver not heard from."""
    if current is None:
        raise Conflict(f"no rollout of {model}@{alias} to resume (its record was deleted)")
    where = f"{current.model}@{current.alias}"
    if not current.running:
        raise Conflict(
            f"the rollout of {where} is not running (it {current.state.value}); nothing to "
            f"resume: start a new one (aiaas rollout {current.model} VERSION)"
        )
    quiet, limit = current.quiet_s(now), unwatched_after(current.plan)
    if quiet < limit:
        # Whole seconds down, the time left up: 18.6 s read "heard from 19 s ago ... quiet for
        # 19 s", a refusal that contradicted itself (hunt_races 3).
        heard, left = int(max(quiet, 0)), max(1, math.ceil(limit - quiet))
        raise Conflict(
            f"the rollout of {where} is still driven by {current.driven_by()} (heard from "
            f"{heard} s ago): resume only a rollout whose driver stopped, quiet for {limit:g} s "
            f"(another {left} s; aiaas rollout status then says NOT WATCHED); or end it: aiaas "
            f"rollout abort {current.model} --alias {current.alias}"
        )
    return current


def not_running(
    current: RolloutRecord | None, model: str, alias: str, now: float | None = None
) -> None:
    """Conflict naming the running rollout in the way of a new one, and the commands that
    deal with it, on its alias: `abort MODEL` alone aborted production's rollout, not the
    staging one named. One whose driver stopped (a CI job killed, then retried) is to be
    resumed, not only aborted (hunt_journey7 2)."""
    if current is None or not current.running:
        return
    what = f"a rollout of {model}@{alias} is running (version {current.candidate}, started by "
    what += f"{current.started_by})"
    abort = f"aiaas rollout abort {model} --alias {alias}"
    quiet = current.quiet_s(time.time() if now is None else now)
    if quiet < unwatched_after(current.plan):
        raise Conflict(
            f"{what}: abort it first ({abort}), or let it end (aiaas rollout status {model} "
            f"--alias {alias})"
        )
    raise Conflict(
        f"{what}, but nothing has driven it for {int(quiet)} s (its process stopped): resume "
        f"it (aiaas rollout resume {model} --alias {alias} [--metrics URL]), or abort it first "
        f"({abort})"
    )


def _parse(name: str, alias: str, raw: bytes) -> RolloutRecord:
    try:
        return RolloutRecord.from_dict(json.loads(raw))
    except (ValueError, TypeError, KeyError, AttributeError, BadRequest) as exc:
        raise CorruptRecord(
            f"the rollout record of {name}@{alias} is corrupt: {exc}",
            public_message=f"the rollout record of {name}@{alias} is corrupt in the registry",
        ) from exc
