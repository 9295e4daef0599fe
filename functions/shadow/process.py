"""The local replay process: `python -m functions.shadow.process FD`, spawned by the caller's
process (functions/shadow/channel.py) on its first shadow copy, with FD its end of a unix
SOCK_SEQPACKET pair.

It reads one copy per message, replays it (functions/shadow/replay.py: EMF to its stdout, as
the function's own), and sends the results back in batches: after BATCH results, FLUSH_S
seconds, or whenever no copy is waiting, so the caller's process wakes for a batch, not for
every copy. It runs at the lowest CPU priority (SCHED_IDLE on Linux: it gets a core only when
nothing else wants it; else nice 19), and exits when its parent's end of the pair closes (the
parent exited or was killed: the kernel closes its sockets).
"""

from __future__ import annotations

import os
import socket
import sys
import time

import orjson

from functions.predict.shadow_copy import MAX_COPY_BYTES
from functions.predict.telemetry import logger
from functions.shadow.replay import Replayer, Result

BATCH = 64
FLUSH_S = 0.05


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


def encode_results(results: list[Result]) -> bytes:
    """[[model, version, shadow_version, seconds, rows, agreed, max_abs, max_rel], ...];
    rows null: the shadow failed on that copy."""
    rows = []
    for labels, seconds, c in results:
        if c is None:
            rows.append([*labels, seconds, None, None, 0.0, 0.0])
        else:
            rows.append([*labels, seconds, c.rows, c.agreed, c.max_abs, c.max_rel])
    return orjson.dumps(rows)


def serve(sock: socket.socket, replayer: Replayer) -> None:
    """Replay copies from `sock` until the other end closes."""
    results: list[Result] = []
    flushed = time.monotonic()
    while True:
        try:  # block only when no result waits to be sent
            line = sock.recv(MAX_COPY_BYTES + 4096, socket.MSG_DONTWAIT if results else 0)
        except BlockingIOError:
            line = None
        except OSError:
            return
        if line == b"":
            return  # the caller's process is gone
        if line is not None:
            result = replayer.replay_line(line)
            if result is not None:
                results.append(result)
        now = time.monotonic()
        if results and (line is None or len(results) >= BATCH or now - flushed >= FLUSH_S):
            try:
                sock.sendall(encode_results(results))
            except OSError:
                return
            results, flushed = [], now


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    priority = lowest_priority()
    sock = socket.socket(fileno=int(args[0]))
    logger.info("shadow replay process %d started (%s)", os.getpid(), priority)
    serve(sock, Replayer.from_env(os.environ))


if __name__ == "__main__":
    main()
