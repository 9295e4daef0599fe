"""The gateway app's body read deadlines (one sweeper instead of a timer per read)."""

from __future__ import annotations

import asyncio
import time

import pytest

from infra.local.deadlines import Deadlines


def test_an_await_past_its_deadline_raises_timeout_soon_after() -> None:
    deadlines = Deadlines(0.2)

    async def late() -> None:
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadlines.within(asyncio.sleep(5))
        assert 0.2 <= time.monotonic() - began < 0.2 + deadlines.period_s + 0.2
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(late())


def test_awaits_in_time_return_their_result_and_leave_nothing_behind() -> None:
    deadlines = Deadlines(0.2)

    async def many() -> list[int]:
        async def value(i: int) -> int:
            await asyncio.sleep(0.01)
            return i

        results = await asyncio.gather(*(deadlines.within(value(i)) for i in range(50)))
        await asyncio.sleep(deadlines.period_s * 2)  # the sweeper stops once nothing is pending
        assert deadlines._sweeper is not None and deadlines._sweeper.done()
        return list(results)

    assert asyncio.run(many()) == list(range(50))


def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines(10)

    async def cancelled() -> None:
        task = asyncio.create_task(deadlines.within(asyncio.sleep(5)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())


def test_close_stops_the_sweeper() -> None:
    deadlines = Deadlines(10)

    async def closed() -> None:
        task = asyncio.create_task(deadlines.within(asyncio.sleep(5)))
        await asyncio.sleep(0.01)
        deadlines.close()
        await asyncio.sleep(0)
        assert deadlines._sweeper is not None and deadlines._sweeper.cancelled()
        task.cancel()

    asyncio.run(closed())
