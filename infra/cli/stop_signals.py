"""SIGTERM and SIGHUP end a command as Ctrl-C does, so what it was writing is cleaned up.

By default those signals end the process where it stands: `kill`, `timeout` or a closed
terminal left a batch's temp upload and shard workers, or a pull's whole version in TMPDIR
(gigabytes for a large model, again at every retry). Raised as a KeyboardInterrupt, they unwind
through the command's `finally` blocks and context managers; main() exits 128 + the signal.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterable, Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


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
    before: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in signums:
        if not (keep_ignored and before[signum] == signal.SIG_IGN):
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def stopped_by_signals() -> contextlib.AbstractContextManager[None]:
    """SIGTERM and SIGHUP raise Stopped while the block runs. The first stop signal wins: later
    ones are ignored so they cannot cut the cleanup short. A SIGHUP ignored (nohup) stays so."""

    def stop(signum: int, frame: FrameType | None) -> None:
        for other in STOP_SIGNALS:  # not SIG_IGN: one caught meanwhile would raise OSError
            signal.signal(other, _ignore)
        raise Stopped(signum) if signum != signal.SIGINT else KeyboardInterrupt

    return signal_handlers(stop)
