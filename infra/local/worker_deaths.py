"""`aiaas serve --workers N`: a worker that dies (the OOM killer, `kill -9`, a crash in native
code, an exit) said in serve's own words, with its pid and how it ended, and the pid of the
worker granian starts in its place.

granian's supervisor said only `Unexpected exit from worker-1` (its "Respawning" line is INFO,
below the level serve gives it): no pid to match with the kernel's "Killed process PID" line,
no way to tell an OOM kill (SIGKILL) from a crash (SIGSEGV) or an exit status, and nothing
saying the worker was started again or what went with it (workers hunt 1).

granian has no hook for this: the worker's `_watcher` (the thread that waits for its process)
and `interrupt_by_parent` (set before a stop or a reload ends it) are read, as server.py reads
its other internals; tests/infra/test_serve_worker_respawn.py pins them.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from typing import Any

from infra.local import lambda_logs

__all__ = ["how_it_ended", "started", "watch"]


def how_it_ended(exitcode: int | None) -> str:
    """A worker process's end, from multiprocessing's `exitcode` (-N: killed by signal N)."""
    if exitcode is None:
        return "ended"
    if exitcode >= 0:
        return f"exited with status {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = f"signal {-exitcode}"
    if -exitcode == signal.SIGKILL:
        return f"was killed by {name} (the OOM killer, or kill -9)"
    return f"was killed by {name}"


def watch(worker: Any, died: set[int]) -> None:
    """Before `worker` starts: its death (one its supervisor did not ask for) is said, and its
    slot added to `died`, which `started` reads when granian starts another there."""
    original = getattr(worker, "_watcher", None)
    if original is None:  # another granian: its own line alone, as before
        return

    def watcher() -> None:
        worker.inner.join()
        # Not one the supervisor ended (a stop, a reload), nor one ending as the server stops.
        asked = getattr(worker, "interrupt_by_parent", False)
        if not asked and not getattr(worker.parent, "interrupt_signal", False):
            died.add(worker.idx)
            said, level = _consequence(worker.inner.exitcode)
            lambda_logs.say(
                f"aiaas serve: worker-{worker.idx + 1} (pid {worker.inner.pid}) "
                f"{how_it_ended(worker.inner.exitcode)}: {said}",
                level,
                stderr=True,
            )
        original()  # granian's: its line, then the respawn (or its crash-loop stop)

    worker._watcher = watcher


def _consequence(exitcode: int | None) -> tuple[str, int]:
    """What went with a worker that ended so, and the line's level. Status 0 is a worker's own
    graceful stop (a SIGTERM sent to it alone, `kill PID`): it answered its requests and its
    exit handlers wrote what it held (past their bound it exits 1). It was said as a crash:
    "its requests failed, the capture lines and drift counts it held are lost" (review_rev5 2)."""
    if exitcode == 0:
        return (
            "stopped on its own (a stop signal sent to it alone), its requests answered and "
            "what it held written",
            logging.WARNING,
        )
    return (
        "the requests in flight on it failed (reset connections), and the capture lines and "
        "drift counts it held are lost",
        logging.ERROR,
    )


def started(start: Callable[[], None], worker: Any, died: set[int]) -> None:
    """`start()` (the worker's start); then, if its slot's worker had died, which process
    replaces it."""
    start()
    if worker.idx in died:
        died.discard(worker.idx)
        lambda_logs.say(
            f"aiaas serve: worker-{worker.idx + 1} started again, pid {worker.inner.pid}",
            logging.WARNING,
            stderr=True,
        )
