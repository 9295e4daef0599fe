"""Which process of `aiaas serve` lines up again the batch jobs the last stop left: exactly one
per start. Each worker of `--workers N` scores the jobs submitted to it in a line of its own
(functions/control/run_queue.py); were every worker to line up the jobs left, each would score
them all. The first worker to ask takes the claim, made before the workers fork, and never gives
it back: a worker granian starts again later (after a crash, or a reload) lines none up, as the
others' lines may hold them."""

from __future__ import annotations

import multiprocessing

from functions.runtime.batch.settings import LOCAL_RESUME_ENV


class ResumeClaim:
    """Made once, in the process that starts the workers; asked once in each worker."""

    def __init__(self, started: float) -> None:
        self.started = started  # inputs placed since are submissions to this server
        self._taken = multiprocessing.Lock()

    def take(self) -> bool:
        """Whether this worker is the first to ask (the lock is held for good: no other is)."""
        return self._taken.acquire(block=False)


def resume_env(claim: ResumeClaim | None) -> dict[str, str]:
    """LOCAL_RESUME_ENV for a worker's functions: the start's time for the worker that takes
    the claim, else empty (set either way: a value in the server's own environment is not every
    worker's to act on)."""
    if claim is None or not claim.take():
        return {LOCAL_RESUME_ENV: ""}
    return {LOCAL_RESUME_ENV: repr(claim.started)}
