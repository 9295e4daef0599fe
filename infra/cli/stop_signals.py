"""SIGTERM and SIGHUP end a command as Ctrl-C does, so what it was writing is cleaned up.

By default those signals end the process where it stands: `kill`, `timeout` or a closed
terminal left a batch's temp upload and shard workers, or a pull's whole version in TMPDIR
(gigabytes for a large model, again at every retry). Raised as a KeyboardInterrupt, they unwind
through the command's `finally` blocks and context managers; main() exits 128 + the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# The `aiaas` console script's own process (launch.py sets it): there a command that has done
# its work ignores stop signals for the rest of the exit (`answered`). Not in a test's process,
# which calls main() many times and must keep its Ctrl-C.
CONSOLE = False
_answered = False
# The exception of the stop signal `stopped_by_signals` took, until it is raised again or its
# block ends. It is raised where the signal lands, and code there may swallow it: Python hands
# one raised in a finalizer (`__del__`, a weakref callback) to `sys.unraisablehook`, which
# prints "Exception ignored in ..." and goes on, and a library's `except BaseException` may
# drop it. A batch stopped at such a moment scored to the end and exited 0 (1 in ~60 runs of
# the S3 stop test). `raise_swallowed` raises it again.
_taken: BaseException | None = None


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, unwinding as Ctrl-C does; the exit is 128 + `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A stop signal after the first: the command is cleaning up already."""


@contextlib.contextmanager
def signal_handlers(
    handler: Callable[[int, FrameType | None], Any] | int,
    signums: Iterable[int] = STOP_SIGNALS,
    *,
    keep_ignored: bool = True,
) -> Iterator[None]:
    """`handler` for `signums` while the block runs, every stop signal's handler put back
    after. `keep_ignored`: a signal ignored on purpose (nohup's SIGHUP) stays ignored."""
    if threading.current_thread() is not threading.main_thread():  # main() called from a
        yield  # thread: signals reach the main thread only, and its handlers are its own
        return
    before: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in signums:
        if not (keep_ignored and before[signum] == signal.SIG_IGN):
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, signal.SIG_IGN if _answered else previous)


def answered() -> None:
    """The command's work is done and it has said so ("published iris:4"): a stop signal from
    now on must not change how the process ends. It was a kill by that signal (-2, no line
    said), or "interrupted", 130: a CI that retries on 130 published the version twice."""
    global _answered
    if not CONSOLE:
        return
    _answered = True
    for signum in STOP_SIGNALS:
        # SIG_IGN, not a Python handler: the interpreter's finalization puts SIG_DFL back for
        # those, and a signal landing then killed the process (-2; 1 CI run in ~10 under load).
        with contextlib.suppress(ValueError):  # not the main thread: nothing to take over
            signal.signal(signum, signal.SIG_IGN)


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped while the block runs. The first stop signal wins: later
    ones are ignored so they cannot cut the cleanup short. A SIGHUP ignored (nohup) stays so.
    One swallowed where it landed is raised again at the work's next `raise_swallowed`."""
    global _taken

    def stop(signum: int, frame: FrameType | None) -> None:
        global _taken
        for other in STOP_SIGNALS:  # not SIG_IGN: one caught meanwhile would raise OSError
            signal.signal(other, _ignore)
        signum = _first_arrived(arrivals, signum)
        _taken = Stopped(signum) if signum != signal.SIGINT else KeyboardInterrupt()
        raise _taken

    _taken = None
    try:
        with _arrival_order() as arrivals, signal_handlers(stop):
            yield
    finally:
        _taken = None


@contextlib.contextmanager
def _arrival_order() -> Iterator[int | None]:
    """The read end of a pipe that Python's C-level handler writes each signal's number to as
    it arrives (`signal.set_wakeup_fd`); None off the main thread, or where the wakeup fd is
    taken already (an event loop's). Python runs the handlers of signals that land during one
    long C call (staging or hashing a file) from the lowest number up: SIGTERM then SIGINT
    20 ms later exited 130, not 143 (rev13 6)."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it; a full pipe drops a byte
    previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    try:
        if previous != -1:  # not ours to take
            signal.set_wakeup_fd(previous)
        yield read_end if previous == -1 else None
    finally:
        if previous == -1 and (current := signal.set_wakeup_fd(-1)) != write_end:
            signal.set_wakeup_fd(current)  # taken over meanwhile: theirs now
        os.close(read_end)
        os.close(write_end)


def _first_arrived(arrivals: int | None, signum: int) -> int:
    """The stop signal that arrived first, as the pipe recorded them; else `signum`."""
    if arrivals is None:
        return signum
    try:
        data = os.read(arrivals, 256)
    except OSError:  # nothing there (BlockingIOError): a signal raised by signal.raise_signal
        return signum
    return next((int(b) for b in data if b in STOP_SIGNALS), signum)


def raise_swallowed() -> None:
    """Raise again, once, a stop taken in this block and swallowed since: called where long work
    reports progress (row_progress.py), on the main thread (signals reach it alone), and not
    while an exception is being handled or unwinds (the stop itself, whose cleanup may report
    progress and must run to its end)."""
    global _taken
    if _taken is None or threading.current_thread() is not threading.main_thread():
        return
    if sys.exc_info()[1] is not None:
        return
    stop, _taken = _taken, None
    raise stop.with_traceback(None)
