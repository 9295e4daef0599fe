"""Predict function state shared by `aiaas serve`'s request threads (and the shadow replay's):
each captured line's time is its own, and every dropped shadow copy is counted."""

from __future__ import annotations

import io
import itertools
import threading
import time
from pathlib import Path

import orjson

from functions.predict.capture import CaptureTap
from functions.predict.metric_names import SHADOW_DROPPED
from functions.predict.telemetry import RequestMetrics
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore

THREADS = 8  # requests served at once (and the replay channel's thread)


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

    threads = [threading.Thread(target=stamp_lines) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


def test_shadow_copies_dropped_on_many_threads_are_each_counted_in_emf(switching: None) -> None:
    out = io.StringIO()
    metrics = RequestMetrics(out=out)
    labels = ("churn", "1", "2")
    together = threading.Barrier(THREADS)

    def drop() -> None:  # the requests' threads and the replay channel's, queue full
        together.wait()
        for _ in range(20_000):  # ~0.1 s in all: enough switches to lose some, before the lock
            metrics.shadow_dropped(labels)

    threads = [threading.Thread(target=drop) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metrics.flush()
    docs = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert sum(doc.get(SHADOW_DROPPED, 0) for doc in docs) == THREADS * 20_000
