"""The loop of `aiaas rollout` in the terminal: check, print each new log entry, wait, again,
until the rollout ends; and what makes it stop early.

A check that fails (the gateway restarting, the store unreachable for a moment) is retried for
CHECK_GRACE_S before the rollout is aborted: a blip used to end a rollout hours in. Stopping the
process (Ctrl-C, `kill`, a CI job cancelled, the terminal closed) aborts the rollout first: the
split is never left live with no one watching it. Only SIGKILL cannot be caught: `aiaas rollout
status` then says no check has come for a while, and `aiaas rollout resume|abort` take over.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType

from functions.runtime.errors import PreconditionFailed
from functions.runtime.manifest import utc_now
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.preconditions import RolloutPrecondition
from functions.runtime.rollout.record import RolloutRecord, RolloutState
from infra.cli.rollout_text import log_line
from infra.cli.stop_signals import signal_handlers
from infra.cli.token_ids_change import say_callers_moved

CHECK_GRACE_S = 30.0  # failed checks in a row are retried this long before the rollout aborts

log = logging.getLogger("aiaas.rollout")


class Stopped(Exception):
    """The process was asked to stop (a signal): abort the rollout, then exit."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        super().__init__(f"the aiaas rollout process was stopped ({name})")


class StopRequest:
    """The stop signals' handler: it raises Stopped only once `follow` is armed to abort.

    A signal raised as an exception can land between any two instructions: between the start's
    return and the `try` that aborts, it used to end the process with the split live. Before
    `arm()`, the first signal is kept and raised by `arm()` itself, inside that `try`; a second
    one raises at once (a start stuck on the store can still be cut short: it aborts what it
    had begun)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.armed = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.armed or not first:
            raise Stopped(signum)

    def arm(self) -> None:
        self.armed = True
        if self.signum is not None:
            raise Stopped(self.signum)


def follow(
    engine: RolloutEngine,
    record: RolloutRecord,
    actor: str,
    grace_s: float = CHECK_GRACE_S,
    stop: StopRequest | None = None,
) -> int:
    """Check until the rollout ends; 0 when it succeeded, 1 when not, 128+N when stopped.
    `stop`: the handler of `stop_on_signals()`, entered before the rollout starts."""
    shown = 0
    failing_since: float | None = None
    starved_at: tuple[str, int] | None = None  # the step whose wait for traffic was said
    try:
        if stop is not None:
            stop.arm()  # a signal since the start raises here, where it aborts
        while True:
            if stop is not None and stop.signum is not None:
                raise Stopped(stop.signum)  # one a check caught and went on from
            shown = print_log(record, shown)
            starved_at = _say_starved(record, starved_at)
            if not record.running:
                say_back(engine, record)
                return 0 if record.state == "succeeded" else 1
            time.sleep(engine.wait_s(record))
            began = time.monotonic()  # a failing check can take its timeout (10 s) to fail
            try:
                checked = engine.check(record.model, record.alias, actor, record.id, record.driver)
                failing_since = None
                if checked.id != record.id:
                    return _replaced(record, checked)
                if checked.driver != record.driver:
                    return _taken_over(record, checked)
                record = checked
            except Stopped:  # the signal landed inside the check: not a failing check
                raise
            except Exception as exc:
                if stop is not None and stop.signum is not None:
                    # Raised as Stopped and turned into another error on its way up (a
                    # `raise ... from` in the store or the metrics source): still a stop.
                    raise Stopped(stop.signum) from exc
                failing_since = failing_since or began
                _failed(engine, record, actor, exc, (failing_since, grace_s))
    except (KeyboardInterrupt, Stopped) as stop:
        stopped = stop if isinstance(stop, Stopped) else Stopped(signal.SIGINT)
        signum, why = stopped.signum, str(stopped)
        with _ignoring_signals():  # a second Ctrl-C must not cut the abort short
            _abort_mine(engine, record, actor, why)
        return 128 + signum


def _say_starved(record: RolloutRecord, said: tuple[str, int] | None) -> tuple[str, int] | None:
    """Say once per step that it has baked and waits for traffic. Holds are not printed (one a
    check), but this one lasts until traffic comes: with no caller, the process said nothing
    for as long as it ran."""
    check = record.last_check or {}
    step = (record.id, record.step)
    if not record.running or said == step or check.get("action") != "hold":
        return said
    # A dead driver's check; one in the same millisecond as the resume is that one too (a fast
    # machine checked and resumed within it; a live driver's next hold is said at its next check).
    if float(check.get("at", 0)) <= round(record.step_started, 3):
        return said
    reason = str(check.get("reason", ""))
    if not reason.startswith("baked; waiting for traffic"):
        return said
    # Only requests this alias's split routes count: send them through it (a pinned version's
    # route, or another alias's, is not counted); the abort names the alias, else it would
    # stop production's rollout, not this one.
    where = (
        record.model if record.alias == DEFAULT_ALIAS else f"{record.model} --alias {record.alias}"
    )
    print(
        f"{check.get('time', utc_now())}  holding     {reason} (the step advances once the "
        f"version has answered them through {record.model}@{record.alias}; "
        f"aiaas rollout abort {where} to stop)",
        flush=True,
    )
    return step


def _abort_mine(engine: RolloutEngine, record: RolloutRecord, actor: str, why: str) -> None:
    """Abort this process's rollout; one started after it ended (someone else's) runs on."""
    mine = RolloutPrecondition.running(record.id)
    current = engine.book.get(record.model, record.alias)
    if current is not None and current.id == record.id and current.driver != record.driver:
        _taken_over(record, current)  # a Ctrl-C here no longer stops the resumed rollout
        return
    try:
        aborted = engine.abort(record.model, record.alias, actor, why, mine)
    except PreconditionFailed:  # it ended meanwhile; perhaps another started since
        aborted = engine.book.require(record.model, record.alias)
        if aborted.id != record.id:
            _replaced(record, aborted)
            return
    print_log(aborted, len(record.log))
    say_back(engine, aborted)


def say_back(engine: RolloutEngine, record: RolloutRecord) -> None:
    """A rollout rolled back or aborted moves the candidate's callers back to the baseline:
    said, as its start said the move there, when their token ids read otherwise (rev12 2)."""
    if record.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED):
        say_callers_moved(engine.registry, record.model, [record.candidate], [record.baseline])


def _replaced(mine: RolloutRecord, now: RolloutRecord) -> int:
    """This process's rollout ended (aborted elsewhere) and another one runs: not ours to drive
    (nor to abort on Ctrl-C); its own process or state machine does."""
    print(
        f"{utc_now()}  ended       rollout {mine.id} is over: rollout {now.id} "
        f"({now.baseline} -> {now.candidate}, started by {now.started_by}) replaced it; left to "
        "its own driver",
        flush=True,
    )
    return 1


def _taken_over(mine: RolloutRecord, now: RolloutRecord) -> int:
    """This process's rollout was resumed elsewhere (this one seemed dead: no check for a while,
    a stalled machine or store): the resume drives it now, one driver a rollout."""
    print(
        f"{utc_now()}  ended       this process no longer drives rollout {mine.id}: "
        f"{now.driven_by()} resumed it elsewhere, and drives it from there",
        flush=True,
    )
    return 1


def _failed(
    engine: RolloutEngine,
    record: RolloutRecord,
    actor: str,
    exc: Exception,
    failing: tuple[float, float],
) -> None:
    """Say a check failed and retry, or, past the grace, abort the rollout and raise."""
    message = getattr(exc, "message", None) or str(exc)
    since, grace_s = failing
    for_s = time.monotonic() - since
    if for_s < grace_s:
        print(
            f"{utc_now()}  check fails  {message}; the alias stays as it is, retrying "
            f"(aborting if checks still fail after {grace_s:g} s)",
            flush=True,
        )
        return
    why = f"checks failed for {for_s:.0f} s ({message}); traffic back on the baseline"
    try:
        _abort_mine(engine, record, actor, why)
    except Exception as second:  # the store is down too: say what is left, and how to end it
        print(
            f"aiaas rollout: could not abort either ({getattr(second, 'message', second)}): "
            f"the alias may still split traffic; run `aiaas rollout abort {record.model} "
            f"--alias {record.alias}` once the store answers",
            file=sys.stderr,
            flush=True,
        )
    raise exc


def print_log(record: RolloutRecord, shown: int) -> int:
    for entry in record.log[shown:] if shown <= len(record.log) else record.log[-1:]:
        print(log_line(entry).removeprefix("  "), flush=True)  # with its reason, if said
    return len(record.log)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """Ctrl-C, SIGTERM and SIGHUP abort the rollout: SIGTERM and SIGHUP used to kill the
    process with the split live. Pass the handler to `follow`. A signal ignored on purpose
    stays so (nohup's SIGHUP: the rollout is meant to outlive the terminal)."""
    request = StopRequest()
    with signal_handlers(request, (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
        yield request


def _ignoring_signals() -> contextlib.AbstractContextManager[None]:
    return signal_handlers(signal.SIG_IGN, keep_ignored=False)
