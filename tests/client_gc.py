"""Latency measured by a test's own client, without the client's garbage collector in it.

A pytest-xdist worker late in the suite holds millions of objects (every module and fixture
it has run), and one full collection of those in the client stalls every caller thread of a
test at once: ~1.4 s for 6 million objects on this 2-core machine. A test that asserts on the
server's latency as its callers measure it then fails on the client's pause, which looks like
a wait in the server. `steady_client` collects what the suite left before the callers start
and freezes it, so a collection meanwhile scans only the test's own new objects; the pauses
that remain (over `PAUSE_S`) are kept for the test's failure message.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PAUSE_S = 0.05


@contextmanager
def steady_client() -> Iterator[list[tuple[int, float]]]:
    """Yields the (generation, seconds) of the client's collections over `PAUSE_S` meanwhile."""
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif (seconds := time.perf_counter() - started[0]) > PAUSE_S:
            pauses.append((info["generation"], round(seconds, 3)))

    gc.collect()
    gc.freeze()
    gc.callbacks.append(timed)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(timed)
        gc.unfreeze()
