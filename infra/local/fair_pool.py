"""The threads `aiaas serve` runs slow functions on, shared fairly between routes.

One FIFO queue (a `ThreadPoolExecutor`) made every offloaded call wait behind all those queued
before it: 24 clients flooding a ~30 ms model on 2 cores kept ~20 calls queued, and a tiny
model's call that went to a thread (its first, a cold start, or one whose model time passed the
offload mark) waited for all of them, 380-550 ms, the heavy model's own latency. Here each route
(method and path: one model, one health check) has its own queue and the threads take from the
routes in turn, and no group of routes (one function: every path and version of one model)
holds more than all threads but one: another function's call waits for one thread to come free
at most, never for a queue it is not in. Capped per path, one model flooded through `/predict`
and `/infer`, or through two versions' paths, took every thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], str]  # the last: its group


class FairPool:
    """`workers` threads over one queue per key, served round-robin; the keys of one group
    run on at most `workers - 1` threads at once between them (all of them when there is
    one)."""

    def __init__(self, workers: int, name: str) -> None:
        self.cap = max(1, workers - 1)
        self._queues: dict[str, deque[_Job]] = {}  # insertion order is the turn order
        self._running: dict[str, int] = {}  # calls running, by group
        self._ready = threading.Condition()
        self._stopping = False
        self._workers, self._name = workers, name
        self._threads: list[threading.Thread] = []  # started by the first call (below)

    def submit(
        self, key: str, fn: Callable[..., Any], *args: Any, group: str | None = None
    ) -> Future[Any]:
        """Run `fn(*args)` in `key`'s turn; `group` (default: the key) caps the threads."""
        future: Future[Any] = Future()
        with self._ready:
            if self._stopping:
                raise RuntimeError("cannot schedule new calls after shutdown")
            if not self._threads:
                # Not in __init__: a server with `--workers N` may build its app before it
                # forks, and a forked worker has none of its parent's threads (its calls waited
                # forever). ThreadPoolExecutor starts its threads on demand for the same reason.
                self._threads = [
                    threading.Thread(target=self._work, name=f"{self._name}_{i}", daemon=True)
                    for i in range(self._workers)
                ]
                for thread in self._threads:
                    thread.start()
            self._queues.setdefault(key, deque()).append((future, fn, args, group or key))
            self._ready.notify()
        # A call cancelled while queued (its caller had a 504) leaves the queue at once: it
        # held the request's body until a thread came to it.
        future.add_done_callback(lambda done: self._forget(key, done))
        return future

    def _forget(self, key: str, future: Future[Any]) -> None:
        if not future.cancelled():
            return
        with self._ready:
            queue = self._queues.get(key, deque())
            for index, job in enumerate(queue):
                if job[0] is future:
                    del queue[index]
                    if not queue:
                        del self._queues[key]
                    return

    def busy(self) -> bool:
        """Whether a call is running."""
        with self._ready:
            return bool(self._running)

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """As `ThreadPoolExecutor.shutdown`: queued calls still run unless `cancel_futures`."""
        with self._ready:
            self._stopping = True
            if cancel_futures:
                queued = [job[0] for queue in self._queues.values() for job in queue]
                self._queues.clear()
                for future in queued:  # after the clear: `_forget` has nothing left to remove
                    future.cancel()
            self._ready.notify_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _next(self) -> _Job | None:
        """The first key in turn with a call queued and a thread to spare in its group
        (called locked)."""
        for key, queue in self._queues.items():
            group = queue[0][3]
            if self._running.get(group, 0) < self.cap:
                job = queue.popleft()
                del self._queues[key]
                if queue:  # to the back of the turn order
                    self._queues[key] = queue
                self._running[group] = self._running.get(group, 0) + 1
                return job
        return None

    def _work(self) -> None:
        while True:
            with self._ready:
                found = self._next()
                while found is None:
                    if self._stopping and not self._queues:
                        return
                    self._ready.wait()
                    found = self._next()
            future, fn, args, group = found
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args))
                    except BaseException as exc:
                        future.set_exception(exc)
            finally:
                with self._ready:
                    self._running[group] -= 1
                    if not self._running[group]:
                        del self._running[group]
                    self._ready.notify()
