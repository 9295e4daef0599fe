"""The thread pool `aiaas serve` offloads slow calls to: routes served in turn, none takes all."""

from __future__ import annotations

import gc
import threading
import weakref
from concurrent.futures import CancelledError

import pytest

from infra.local.fair_pool import FairPool


def test_a_flooded_key_leaves_a_thread_and_others_go_before_its_queue() -> None:
    pool, gate, order = FairPool(3, "test"), threading.Event(), list[str]()
    try:
        busy = [pool.submit("heavy", gate.wait) for _ in range(2)]  # all threads but one
        queued = [pool.submit("heavy", order.append, "heavy") for _ in range(5)]
        assert pool.submit("tiny", order.append, "tiny").result(timeout=5) is None
        assert order == ["tiny"]  # the free thread took it, not the heavy calls queued first
        gate.set()
        for future in busy + queued:
            future.result(timeout=5)
        assert order == ["tiny"] + ["heavy"] * 5
    finally:
        gate.set()
        pool.shutdown()


def test_keys_with_calls_queued_take_turns() -> None:
    pool, gate, order = FairPool(2, "test"), threading.Event(), list[str]()
    held, holding = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        held.wait()

    blocker = pool.submit("block", gate.wait)  # one thread for good
    holder = pool.submit("hold", hold)  # the other, until every call below is queued (else it
    assert holding.wait(5)  # took each "a" as it came, and the order was the submits' timing)
    futures = [pool.submit(key, order.append, key) for key in "aaab" + "b"]
    held.set()  # one thread now serves the queues, in turn
    for future in [holder, *futures]:
        future.result(timeout=5)
    gate.set()
    blocker.result(timeout=5)
    pool.shutdown()
    assert order == ["a", "b", "a", "b", "a"]  # b not behind the three a's sent before it


def test_shutdown_cancels_queued_calls_when_asked_and_refuses_new_ones() -> None:
    pool, gate, started = FairPool(2, "test"), threading.Event(), threading.Event()

    def run() -> bool:
        started.set()
        return gate.wait()

    running = pool.submit("k", run)
    assert started.wait(5)
    queued = pool.submit("k", gate.wait)  # capped at one thread: it waits
    pool.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(CancelledError):
        queued.result(timeout=5)
    with pytest.raises(RuntimeError):
        pool.submit("k", gate.wait)
    gate.set()
    assert running.result(timeout=5) is True


def test_the_keys_of_one_group_share_its_cap() -> None:
    """One model through `/predict` and `/infer` (or two versions' paths) is one group: capped
    per path, it took every thread and the next model's call waited for one of its calls."""
    pool, gate, order = FairPool(3, "test"), threading.Event(), list[str]()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        gate.wait()

    try:
        busy = [pool.submit(path, hold, group="heavy") for path in ("/predict", "/infer")]
        assert all(started.acquire(timeout=5) for _ in busy)
        more = pool.submit("/v2/infer", order.append, "heavy", group="heavy")  # over the cap
        assert pool.submit("/tiny", order.append, "tiny").result(timeout=5) is None
        assert order == ["tiny"] and not more.done()  # the third thread was kept for "tiny"
        gate.set()
        more.result(timeout=5)
        assert order == ["tiny", "heavy"]
    finally:
        gate.set()
        pool.shutdown()


def test_a_call_cancelled_in_the_queue_leaves_it_at_once() -> None:
    """A caller answered 504 while its call waited: the call's arguments (the request's body)
    were held until a thread reached them."""

    class Body:
        pass

    pool, gate, started = FairPool(2, "test"), threading.Event(), threading.Event()

    def run() -> None:
        started.set()
        gate.wait()

    try:
        running = pool.submit("k", run)
        assert started.wait(5)
        body = Body()
        held = weakref.ref(body)
        queued = pool.submit("k", id, body)  # capped at one thread: it waits
        del body
        assert held() is not None
        assert queued.cancel()
        gc.collect()
        assert held() is None  # gone from the queue with the thread still busy
        gate.set()
        running.result(timeout=5)
        assert pool.submit("k", len, "abc").result(timeout=5) == 3  # the key's turn goes on
    finally:
        gate.set()
        pool.shutdown()
