"""The end of an `aiaas serve` process (one worker) or of a worker (`--workers N`): its exit
handlers run, within a bound, then the process ends without finalizing the interpreter.

The exit handlers are what the functions registered with `atexit`: the predict function's
capture buffer writes the lines it holds (about a second of them) and its drift monitor the
counts not yet flushed (functions/predict/handler.py). They must run however the stop ended:
requests all answered, or cut off at the end of the grace or at a second signal.

Bounded: a store that does not answer (S3 accepting connections and never replying) kept
each write for the S3 client's read timeout times its attempts (30 s x 5 by default), which
a stopping server must not wait for. They run on a thread of their own, waited for at most
EXIT_HANDLERS_S; past it the process ends anyway, says what was lost and exits 1. Ten seconds
writes a few dozen objects to a store that answers (tens of ms each) and is what a container
runtime allows a whole stop by default (`docker stop`). In the one-worker process a further
SIGINT/SIGTERM/SIGHUP while they run ends it at once (exit 1): an operator who insists is
not made to wait.

Not finalizing: finalization ran while native threads were still winding down (granian's
Rust runtime, onnxruntime's pools, a warm-up past its wait): 1 stop in a few hundred crashed
with SIGSEGV. A worker under granian's supervisor always ended this way (multiprocessing ends
a child with os._exit).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

from infra.local import lambda_logs

EXIT_HANDLERS_S = 10.0  # the longest the exit handlers run, however the stop ended
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# A stop signal this soon after the first is the same stop, not an operator insisting:
# timeout(1), and `kill -- -PGID`, send it to the process and again to its process group.
SAME_STOP_S = 0.25

_lock = threading.Lock()
_first_stop: float | None = None
_running: threading.Thread | None = None
_deadline = 0.0


class _StopNow(Exception):
    """A stop signal while the exit handlers ran."""


def insisting(arrived: float | None = None) -> bool:
    """Called on each stop signal: whether this one asks to stop now (a later signal), rather
    than to stop gracefully (the first, or its duplicate within SAME_STOP_S). `arrived`: its
    `time.monotonic()` when it arrived (infra/local/signal_clock.py), else now: a signal read
    late (its loop busy) is judged by when it was sent, not by when it was read."""
    global _first_stop
    now = time.monotonic() if arrived is None else arrived
    if _first_stop is None:
        _first_stop = now
    return now - _first_stop >= SAME_STOP_S


def run_exit_handlers() -> bool:
    """Run the exit handlers, until EXIT_HANDLERS_S after they started; whether they finished.
    Once a process: a later call (a worker's cut-off timer) waits for the same run."""
    global _running, _deadline
    with _lock:
        if _running is None:
            _running = threading.Thread(
                target=atexit._run_exitfuncs, name="aiaas-exit-handlers", daemon=True
            )
            _deadline = time.monotonic() + EXIT_HANDLERS_S
            _running.start()
    _running.join(max(0.0, _deadline - time.monotonic()))
    return not _running.is_alive()


def stop_while_starting() -> None:
    """Until the server takes the stop signals over, one ends the start as a stop after it
    would (`aiaas serve: stopped`, exit 0): Python's default ended it silently with 143 while
    the store was listed (up to 5 s when it hangs) and the server was set up."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stopped_while_starting)


def _stopped_while_starting(*_: Any) -> NoReturn:
    """Ends the process at once, as the console script's early handler does: no exit handler
    of the functions is registered before the server takes the signals over, and running the
    interpreter's own (logging's shutdown) waited for the locks this thread held where the
    signal landed. granian's logging set-up holds logging's module lock, and a stop landing in
    it ran to EXIT_HANDLERS_S and exited 1 (1 CI run; tests/infra/test_serve_stop_locks.py)."""
    try:  # a line that cannot be written (its reader gone, a write cut mid-way) still ends it
        lambda_logs.say("aiaas serve: stopped")
    finally:
        os._exit(0)


def end_process(code: int, *, signals: bool = True) -> NoReturn:
    """End the process with `code` once its exit handlers ran (1 if they did not finish).
    With `signals` (the one-worker process; a worker leaves its signals to the supervisor), a
    stop signal meanwhile ends it at once."""
    signals = signals and threading.current_thread() is threading.main_thread()
    if signals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, _stop_now)
    try:
        finished = run_exit_handlers()
        why = f"still running after {EXIT_HANDLERS_S:g} s (is the model store answering?)"
    except _StopNow:
        finished, why = False, "stopped by another signal"
    if signals:
        for signum in STOP_SIGNALS:  # ending now: a signal must not raise out of here
            signal.signal(signum, signal.SIG_IGN)
    if not finished:
        code = 1
        lambda_logs.say(
            f"aiaas serve: the exit handlers were {why}: captured lines and drift counts "
            "not yet written are lost",
            logging.ERROR,
            stderr=True,
        )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stop_now(*_: Any) -> None:
    if insisting():
        raise _StopNow
