"""How a shard worker (a process of `run_sharded_locally`'s pool, functions/runtime/batch/
shard_pool.py) takes a stop signal: it unwinds once, so its temp files go, and says nothing; the
parent says the run was interrupted."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _ignore(signum: int, frame: object) -> None:
    """A stop signal after the first: the process is stopping already."""


def quiet_on_ctrl_c() -> None:
    """A pool worker's Ctrl-C (the terminal sends it to the whole process group): unwind, so
    temp files are removed, and exit quietly; the parent says it was interrupted, once.
    The worker was started with SIGINT blocked (one during its imports was a traceback): a
    Ctrl-C that came meanwhile is delivered here, once the handler is in place."""

    started = False

    def stop(signum: int, frame: object) -> None:
        if not started:  # still in this initializer, whose exceptions the pool logs: no work begun
            os._exit(128 + signum)
        # Once: a second must not cut the cleanup. Not SIG_IGN: a signal already caught (the
        # parent's SIGTERM right after the terminal's SIGINT) would then raise "ignored due
        # to race condition" in the middle of the cleanup.
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, _ignore)
        raise SystemExit(128 + signum)  # multiprocessing prints no traceback for SystemExit

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # as the parent's (nohup, `&`)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        return
    signal.signal(signal.SIGINT, stop)
    # The pool SIGTERMs the workers still running once one has gone: they unwind the same way.
    signal.signal(signal.SIGTERM, stop)
    # A spawned worker exits through the interpreter's atexit callbacks (logging's shutdown):
    # a stop arriving there raised SystemExit inside one, a traceback under "Exception ignored
    # in atexit callback" on the user's terminal. Registered last, this one runs first.
    atexit.register(_stopping_quietly)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    started = True


def _stopping_quietly() -> None:
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, _ignore)


def die_with(parent: int) -> None:
    """SIGTERM this worker when process `parent` (the `aiaas batch` that started the pool)
    dies: SIGKILLed (an OOM kill, `timeout -s KILL`), it cannot stop its workers, which waited
    for their next shard for ever, each holding its model (~130 MB), and one still scoring
    wrote its part after the parent was gone. Linux's PR_SET_PDEATHSIG fires when the *thread*
    that spawned the worker exits; the pool is created, used and shut down within one call of
    one thread, so that is the parent's death. Nothing where there is no prctl (not Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:  # it died before prctl: no signal will come
        os._exit(128 + signal.SIGTERM)
