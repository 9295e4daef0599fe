"""Body read deadlines for the gateway app, kept by one sweeper instead of a timer per request.

`asyncio.timeout` arms and disarms a loop timer around every body read: ~6 us a request on
uvloop (a libuv timer started and stopped), as much as the rest of the app's own work. Here a
read registers its task and deadline in a dict (~0.5 us); one sweeper task, alive while reads
are pending, wakes every `period` and cancels the reads past their deadline, which then raise
`TimeoutError` as `asyncio.timeout` would. A late body is refused at most `period` after its
deadline (a quarter of the timeout, at most a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

MAX_PERIOD_S = 1.0


class Deadlines:
    """Awaits with a deadline, swept together (one per event loop user, e.g. per app)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.period_s = min(MAX_PERIOD_S, timeout_s / 4)
        self._pending: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def within(self, awaitable: Awaitable[T]) -> T:
        """`await awaitable`, or TimeoutError once `timeout_s` has passed (in a task)."""
        task = asyncio.current_task()
        if task is None:  # not in a task: nothing to cancel, so no deadline can be kept
            raise RuntimeError("Deadlines.within must be awaited inside a task")
        # The monotonic clock, as asyncio's loop.time(): the loop's own is a method away.
        self._pending[task] = time.monotonic() + self.timeout_s
        sweeper = self._sweeper
        if sweeper is None or sweeper.done():
            self._sweeper = task.get_loop().create_task(self._sweep())
        try:
            return await awaitable
        except asyncio.CancelledError:
            if task not in self._expired:
                raise  # cancelled by someone else (shutdown): not ours to turn into a timeout
            self._expired.discard(task)
            task.uncancel()
            raise TimeoutError from None
        finally:
            self._pending.pop(task, None)

    def close(self) -> None:
        """Stop the sweeper (the server is stopping: no task left pending on a closing loop)."""
        if self._sweeper is not None and not self._sweeper.done():
            self._sweeper.cancel()

    async def _sweep(self) -> None:
        while self._pending:
            await asyncio.sleep(self.period_s)
            now = time.monotonic()
            for task, deadline in list(self._pending.items()):
                if now >= deadline and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
