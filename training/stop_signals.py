"""SIGTERM and SIGHUP in a training job's container unwind as Ctrl-C does.

AWS Batch runs `python -m training` as the container's process 1 (infra/aws_batch.py: `sh -c
'... exec python -m training'`), and stops it (`terminate-job`, the job's timeout, a Spot
reclaim) with SIGTERM, then SIGKILL 30 s later. The kernel drops a signal whose action is the
default for process 1, so the job ignored the SIGTERM and was killed: its publish never
removed the model it had sent, and the retry (`RetryStrategy`, the same `--version`) was
refused for that version whenever its bytes differed. `aiaas train` has had this since
hunt_journey7 1 (infra/cli/stop_signals.py); the training image has no infra/, so its
entrypoint has its own, in the standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP; the exit is 128 + `signum`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def _ignore(signum: int, frame: FrameType | None) -> None:
    """A stop signal after the first, or once the version is published: the job is cleaning
    up, or done."""


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped (SIGINT KeyboardInterrupt) while the block runs; the
    first wins, later ones cannot cut the cleanup short. A SIGHUP ignored (nohup) stays so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        published()
        raise Stopped(signum) if signum != signal.SIGINT else KeyboardInterrupt()

    before: dict[int, Any] = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum, previous in before.items():
        if previous != signal.SIG_IGN:
            signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)


def published() -> None:
    """From now on a stop signal changes nothing: the version exists (or the job is already
    unwinding), and the job ends as it would have."""
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) != signal.SIG_IGN:
                signal.signal(signum, _ignore)
