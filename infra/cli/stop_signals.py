"""SIGTERM and SIGHUP end a command as Ctrl-C does, so what it was writing is cleaned up.

By default those signals end the process where it stands: `kill`, `timeout` or a closed
terminal left a batch's temp upload and shard workers, or a pull's whole version in TMPDIR
(gigabytes for a large model, again at every retry). Raised as a KeyboardInterrupt, they unwind
through the command's `finally` blocks and context managers; main() exits 128 + the signal.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, unwinding as Ctrl-C does; the exit is 128 + `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A stop signal after the first: the command is cleaning up already."""


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped while the block runs. The first stop signal wins: later
    ones are ignored so they cannot cut the cleanup short. A SIGHUP ignored (nohup) stays so."""
    before = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def stop(signum: int, frame: FrameType | None) -> None:
        for other in STOP_SIGNALS:  # not SIG_IGN: one caught meanwhile would raise OSError
            signal.signal(other, _ignore)
        raise Stopped(signum) if signum != signal.SIGINT else KeyboardInterrupt

    for signum in STOP_SIGNALS:
        if before[signum] != signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
