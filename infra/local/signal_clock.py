"""Stop signals for the one-worker `aiaas serve`, timed as they arrive, not as the loop reads them.

An event loop's signal handler (`loop.add_signal_handler`) runs when the loop is next free. A
call that held the loop (a heavy request on a route judged cheap: infra/local/timing.py) kept
every signal sent meanwhile unread, and then read them all at once: two SIGTERMs sent 2 s
apart were handled within microseconds of each other, taken for one stop and its duplicate
(ending.SAME_STOP_S), and the operator's second signal, which cuts requests off, was lost.

Here Python's C-level signal handler, which runs as a signal arrives in whatever the process
is doing, writes the signal's number to a pipe (`signal.set_wakeup_fd`); a thread of its own
reads it, notes the time, and hands the stop to the loop with that time. The main thread's
Python-level handler does nothing: it only has to exist for the C-level one to be installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any


def listen(
    loop: asyncio.AbstractEventLoop,
    signals: Iterable[signal.Signals],
    handler: Callable[[float], None],
) -> None:
    """From now on, each of `signals` calls `handler(arrived)` on `loop`, `arrived` being the
    `time.monotonic()` of its arrival. Called on the main thread, the loop running: it takes
    the process's wakeup fd over (the loop's own signal handlers, if any, are not woken)."""
    wanted = {int(signum) for signum in signals}
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it; a full pipe drops a byte
    for signum in wanted:
        signal.signal(signum, _noted)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)

    def relay() -> None:
        while True:
            data = os.read(read_end, 64)
            arrived = time.monotonic()
            for signum in data:
                if signum in wanted:
                    with contextlib.suppress(RuntimeError):  # the loop has closed
                        loop.call_soon_threadsafe(handler, arrived)

    threading.Thread(target=relay, name="aiaas-signals", daemon=True).start()


def _noted(*_: Any) -> None:
    """The Python-level handler: the stop was taken by `listen`'s thread already."""
