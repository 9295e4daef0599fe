"""The local replay process: `python -m functions.shadow.process FD PARENT_PID`, spawned by
the caller's process (functions/shadow/channel.py) on its first shadow copy, with FD its end of
a unix SOCK_SEQPACKET pair.

It reads batches of copies (one line each: functions/shadow/batch.py), replays each
(functions/shadow/replay.py: EMF to its stdout, as the function's own), and sums the results
per version pair (functions/predict/shadow_tally.py), sent back in one small message at most
every FLUSH_S: the caller's process wakes twice a second under load, for a handful of
increments, not for every copy. A result after a pause goes back at once. It runs at the
lowest CPU priority (SCHED_IDLE on Linux: it gets a core only when nothing else wants it; else
nice 19), and exits when its parent's end of the pair closes (the parent exited or was killed:
the kernel closes its sockets), or, on Linux, when the parent dies even though its end stays
open elsewhere (`die_with`).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping

import orjson

from functions.predict.shadow_tally import ShadowLabels, ShadowTally
from functions.predict.telemetry import logger
from functions.runtime.settings import LOG_SETUP_ENV, shadow_cpus, shadow_priority
from functions.shadow.batch import MAX_MESSAGE
from functions.shadow.replay import Replayer

PR_SET_PDEATHSIG = 1  # linux/prctl.h
FLUSH_S = 0.5  # results are sent back at most this often (the first after a pause at once)


def lowest_priority() -> str:
    """Run this process (and the threads it starts later) only on otherwise idle CPU time."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return "SCHED_IDLE"
    except (AttributeError, OSError):  # not Linux: the lowest nice value instead
        pass
    try:
        os.nice(19 - os.nice(0))
        return "nice 19"
    except (AttributeError, OSError):
        return "default"


def encode_results(tallies: dict[ShadowLabels, ShadowTally]) -> bytes:
    """One message: a row per version pair (functions/predict/shadow_tally.py)."""
    return orjson.dumps([tally.to_row(labels) for labels, tally in tallies.items()])


def serve(sock: socket.socket, replayer: Replayer) -> None:
    """Replay copies from `sock` until the other end closes; results summed, sent back at most
    every FLUSH_S."""
    tallies: dict[ShadowLabels, ShadowTally] = {}
    flushed = -math.inf
    while True:
        # Block until copies come, or (results waiting) until they are due.
        sock.settimeout(max(0.0, flushed + FLUSH_S - time.monotonic()) if tallies else None)
        try:
            message = sock.recv(MAX_MESSAGE)
        except (TimeoutError, BlockingIOError):  # a timeout of 0 makes the socket nonblocking
            message = None
        except OSError:
            return
        if message == b"":  # the caller is gone, or done with it (a retired function's)
            with contextlib.suppress(OSError):
                if tallies:
                    sock.sendall(encode_results(tallies))
            return
        for line in message.split(b"\n") if message else ():  # one copy a line
            result = replayer.replay_line(line) if line else None
            if result is not None:
                labels, seconds, comparison = result
                tallies.setdefault(labels, ShadowTally()).add(seconds, comparison)
        now = time.monotonic()
        if tallies and now - flushed >= FLUSH_S:
            try:
                sock.settimeout(None)
                sock.sendall(encode_results(tallies))
            except OSError:
                return
            tallies, flushed = {}, now


def die_with(parent: int) -> bool:
    """Exit when process `parent` dies, even if its end of the pair stays open (a process it
    forked holds a copy) or this one is busy replaying: Linux's PR_SET_PDEATHSIG sends SIGTERM
    then. The kernel sends it when the *thread* that spawned this process exits, which may be
    a request thread of a live parent, so the handler exits only once this process has been
    re-parented. False where there is no prctl (not Linux): the socket's EOF is then all."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return False

    def on_term(signum: int, frame: object) -> None:
        if os.getppid() != parent:
            os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    if prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # it died before prctl: no signal will come
        os._exit(0)
    return True


def setup_logging(env: Mapping[str, str]) -> None:
    """This process's own lines (its EMF goes to stdout), at the function's log level: as its
    parent writes them when the parent names how (LOG_SETUP_ENV: `aiaas serve`'s JSON lines,
    among which they land), else plain text on stderr."""
    hook = env.get(LOG_SETUP_ENV, "").strip()
    problem = None
    if hook:
        module, _, name = hook.partition(":")
        try:
            setup = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            problem = f"{LOG_SETUP_ENV}={hook!r} not usable ({exc!r}): plain lines instead"
        else:
            setup(env)
            return
    level = env.get("AWS_LAMBDA_LOG_LEVEL") or env.get("POWERTOOLS_LOG_LEVEL")
    logging.basicConfig(
        level=getattr(logging, (level or "INFO").upper(), logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if problem:
        logger.warning(problem)


def main(argv: list[str] | None = None) -> None:
    """`FD PARENT_PID`: this process's end of the pair, and the process it serves."""
    args = sys.argv[1:] if argv is None else argv
    setup_logging(os.environ)
    # Checked by `aiaas serve` as it starts, as the CPUs are.
    priority = lowest_priority() if shadow_priority(os.environ) == "idle" else "normal priority"
    cpus = shadow_cpus(os.environ)  # checked by `aiaas serve` as it starts
    if cpus is not None:
        try:
            os.sched_setaffinity(0, cpus)
        except (AttributeError, OSError) as exc:  # outside the cgroup's CPU set; not Linux
            logger.warning(
                "AIAAS_SHADOW_CPUS=%s not applied (%s)", os.environ["AIAAS_SHADOW_CPUS"], exc
            )
            cpus = None
    backstop = die_with(int(args[1]))
    sock = socket.socket(fileno=int(args[0]))
    logger.info(
        "shadow replay process %d started (%s, CPUs %s, parent-death signal %s)",
        os.getpid(),
        priority,
        ",".join(map(str, sorted(cpus))) if cpus is not None else "any",
        "on" if backstop else "off",
    )
    serve(sock, Replayer.from_env(os.environ))


if __name__ == "__main__":
    main()
