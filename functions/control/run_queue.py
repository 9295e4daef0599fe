"""The line of a directory store's batch jobs: a fixed number of threads score them in order.

A thread per job scored every job submitted at once, with nothing to bound them: 24 jobs of
5.9 MB held 935 MB and 38 threads, 72 held 1.4 GB and 140, and the server's answers slowed to
seconds; `--max-in-flight` could not help, as a job is answered (202) before it is scored
(batch hunt #1). Here `runs` threads take the jobs in the order they came; at most `room` wait,
and a submission past that is a 503 with `Retry-After` before its input is placed. A job
submitted again while it waits keeps its place (the run reads the input as it is when it
starts), and a failed run may come back after a delay (`retry`), as a queue redelivers it.

The jobs a stop left (left_jobs.py) that the line has no room for at the start wait behind it
(`add_left`): each time a run takes a job off the line, the oldest of them takes the place it
freed, except the place after a submission was refused for want of room, kept for submissions:
while both wait they take turns, so neither starves; and a thread with nothing in line to run
takes one of them at once. Before, they waited for the next start.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from functions.runtime.errors import Busy
from functions.runtime.heap import give_back_freed

if TYPE_CHECKING:
    from functions.control.jobs import Job

log = logging.getLogger("aiaas.control")

RETRY_AFTER_MAX_S = 60


@dataclass(frozen=True)
class Waiting:
    job: Job
    attempt: int  # 1: as submitted; then its retries
    ready_at: float  # time.monotonic(): a retry waits out its backoff


Scorer = Callable[["Job", int], None]  # (job, attempt): never raises


class RunQueue:
    """Jobs waiting to be scored, keyed by input, and the threads that score them."""

    def __init__(self, runs: int, room: int, score: Scorer) -> None:
        self.runs = runs
        self.room = room
        self._score = score
        self._waiting: OrderedDict[str, Waiting] = OrderedDict()  # by input key, in order
        self._running: set[str] = set()  # input keys: one run of an input at a time
        self._held = 0  # places held by submissions placing their input
        self._threads: list[threading.Thread] = []
        self._turn = threading.Condition()
        self._run_s = 1.0  # how long a run takes lately: what Retry-After says
        self._left: deque[Job] = deque()  # left by a stop, past the line's room: oldest first
        self._owed = False  # a submission was refused for want of room: the next place is its

    @contextlib.contextmanager
    def place_for(self, job: Job) -> Iterator[None]:
        """A place in line held while `job`'s input is placed; a 503 first when none is left
        (its input is then never placed: no job left pending that no run will score)."""
        with self._turn:
            held = job.obj.input_key not in self._waiting  # else it waits already: its place
            if held and len(self._waiting) + self._held >= self.room:
                self._owed = bool(self._left)  # the next place freed is a submission's
                wait_s = self._retry_after_s()
                raise Busy(
                    f"the line of batch jobs waiting to be scored here is full ({self.room}, "
                    f"AIAAS_BATCH_LOCAL_QUEUE): submit the job again in {wait_s} s",
                    wait_s,
                )
            self._held += held
        try:
            yield
        finally:
            with self._turn:
                self._held -= held

    def add(self, job: Job, attempt: int = 1, delay_s: float = 0.0) -> None:
        """Line `job` up (a retry: `attempt` > 1, after `delay_s`); one that waits already
        keeps its place, and a retry gives way to a submission of the same input."""
        key = job.obj.input_key
        with self._turn:
            if key in self._waiting:
                if attempt == 1:  # the input was placed again: its run starts over, as a new one
                    self._waiting[key] = Waiting(job, 1, time.monotonic())
            else:
                self._waiting[key] = Waiting(job, attempt, time.monotonic() + delay_s)
            self._turn.notify()
            self._start_threads()

    def add_left(self, jobs: Iterable[Job]) -> tuple[int, Job | None]:
        """Line up the jobs a stop left, in their order, while the line has room (as a
        submission gets it, less those placing their input now), the rest behind it to enter
        as places free: how many wait in line now, and the first of the rest. One that waits or
        runs already keeps its turn (a submission's, after a start)."""
        lined, behind = 0, None
        with self._turn:
            for job in jobs:
                key = job.obj.input_key
                if key in self._waiting or key in self._running:
                    lined += 1
                elif self._left or len(self._waiting) + self._held >= self.room:
                    behind = behind or job
                    self._left.append(job)
                else:
                    self._waiting[key] = Waiting(job, 1, time.monotonic())
                    lined += 1
            self._turn.notify_all()
            self._start_threads()
        return lined, behind

    def _next_left(self) -> Job | None:
        """The oldest job left behind the line that no submission has lined up or run since
        (held: `_turn`)."""
        while self._left:
            job = self._left.popleft()
            if job.obj.input_key not in self._waiting and job.obj.input_key not in self._running:
                if not self._left:
                    log.info("the last batch job left by the last stop has its turn")
                return job
        return None

    def _freed(self) -> None:
        """A place in line freed: the oldest job left takes it, unless a refused submission is
        owed it (held: `_turn`)."""
        if self._owed:
            self._owed = False
        elif len(self._waiting) + self._held < self.room and (job := self._next_left()):
            self._waiting[job.obj.input_key] = Waiting(job, 1, time.monotonic())

    def _start_threads(self) -> None:
        """Up to `runs` threads, started as jobs come (held: `_turn`)."""
        jobs = len(self._waiting) + len(self._running) + len(self._left)
        while len(self._threads) < min(self.runs, jobs):
            thread = threading.Thread(
                target=self._work,
                name=f"aiaas-local-batch-{len(self._threads) + 1}",
                daemon=True,  # as the run of an event: cut off by a stop, its input kept
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while True:
            turn = self._next()
            began = time.perf_counter()
            try:
                self._score(turn.job, turn.attempt)
            except Exception:  # a scorer's bug: the next job still runs
                log.exception("local batch run of %s failed", turn.job.obj.input_key)
            finally:
                with self._turn:
                    self._running.discard(turn.job.obj.input_key)
                    self._run_s = 0.7 * self._run_s + 0.3 * (time.perf_counter() - began)
                    self._turn.notify_all()  # a job of the same input may run now
                give_back_freed()

    def _next(self) -> Waiting:
        """The first job in line that is ready to run, once there is one."""
        with self._turn:
            while True:
                now, soonest = time.monotonic(), math.inf
                for key, turn in self._waiting.items():
                    if key in self._running:
                        continue
                    if turn.ready_at <= now:
                        del self._waiting[key]
                        self._running.add(key)
                        self._freed()
                        return turn
                    soonest = min(soonest, turn.ready_at)
                job = self._next_left()  # nothing in line to run: one left by a stop, now
                if job is not None:
                    self._running.add(job.obj.input_key)
                    return Waiting(job, 1, now)
                self._turn.wait(None if soonest == math.inf else soonest - now)

    def _retry_after_s(self) -> int:
        """When a place is likely free: a run's time, shared by the threads, in whole seconds."""
        return max(1, min(RETRY_AFTER_MAX_S, math.ceil(self._run_s / self.runs)))
