"""Capture state shared by `aiaas serve`'s request threads: each line's time is its own."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.predict.capture import CaptureTap
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.pool import ModelPool, ServedModel
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switched as often as the interpreter can: a race shows within a few thousand
    calls rather than once a day."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_lines_stamped_on_many_threads_each_carry_their_own_second(
    tmp_path: Path, switching: None
) -> None:
    store = LocalStore(tmp_path / "store")
    ticks, seen = itertools.count(), threading.local()

    def wall() -> float:  # half a second a call: the second changes every other line
        seen.now = 1.8e9 + next(ticks) * 0.5
        return float(seen.now)

    tap = CaptureTap(
        ServedModel(ModelPool(Registry(store)), "m:1"), CaptureBuffer(store), wall=wall
    )
    wrong: list[tuple[str, str]] = []

    def stamp_lines() -> None:
        for _ in range(5000):
            stamp = tap._stamp()
            want = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(seen.now)))
            if not stamp.startswith(want):
                wrong.append((stamp, want))

    threads = [threading.Thread(target=stamp_lines) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
