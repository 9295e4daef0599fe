"""Batch jobs on a directory store, scored by the control plane itself (a directory has no S3
notifications): lined up in a `RunQueue`, a few at a time. In AWS a run that raises is
delivered again by its queue, 5 times, then kept in the dead-letter queue; here a run that
raises for a reason a retry may cure (a 5xx: the store failing, a model file that fails its
check) is run again after a backoff, twice, and a run that still fails is failed with the
reason: its thread died with "File name too long", or on a corrupt manifest or model file, and
the job read "pending" for good.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from http import HTTPStatus
from typing import TYPE_CHECKING

from functions.control.run_queue import RunQueue
from functions.runtime.batch.run import (
    RunInput,
    base_summary,
    failed_summary,
    finished_summary,
    publish_failure,
)
from functions.runtime.errors import AiaasError, KeyClash, NotFound, public_answer
from functions.runtime.manifest import utc_now
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore

if TYPE_CHECKING:
    from functions.batch.service import BatchService
    from functions.control.jobs import Job

log = logging.getLogger("aiaas.control")

KEPT_FAILURES = (
    1000  # failed runs remembered, newest kept: those whose summary could not be written
)
RETRY_DELAYS_S = (1.0, 3.0)  # before the 2nd and the 3rd attempt of a run that raised


class LocalRuns:
    """Scores submitted jobs of a directory store, in order, `settings.local_runs` at once."""

    def __init__(self, store: ObjectStore, service: BatchService) -> None:
        self.store = store
        self.service = service
        settings = service.settings
        self.queue = RunQueue(settings.local_runs, settings.local_queue, self._score)
        self._failed: OrderedDict[str, tuple[str, str]] = OrderedDict()  # key: (etag, reason)
        self._lock = threading.Lock()

    def place_for(self, job: Job) -> contextlib.AbstractContextManager[None]:
        """Room in line for `job`, held while its input is placed: a 503 when there is none."""
        return self.queue.place_for(job)

    def start(self, job: Job) -> None:
        """Line `job`'s input up to be scored as it is when its turn comes."""
        self.queue.add(job)

    def failure(self, input_key: str, etag: str) -> str | None:
        """Why the run of this very input (its `etag`) failed, where no summary could say so."""
        with self._lock:
            failed = self._failed.get(input_key)
        return failed[1] if failed is not None and failed[0] == etag else None

    def _score(self, job: Job, attempt: int) -> None:
        from functions.batch.events import ObjectCreated

        try:
            info = self.store.head(job.obj.input_key)
        except NotFound:  # gone already: no run of it to fail
            log.warning("local batch run of %s: its input is gone", job.obj.input_key)
            return
        except Exception as exc:  # no ETag, no summary to write: retried, else only logged
            if not self._again(job, attempt, exc):
                log.exception("local batch run of %s could not start", job.obj.input_key)
            return
        run = RunInput(job.obj, self.store.location.bucket, info)
        started, began = utc_now(), time.perf_counter()
        try:
            event = ObjectCreated(run.bucket, job.obj.input_key, info.etag, info.size)
            self.service.on_object(event)
        except Exception as exc:  # the thread has no caller to tell: the job's status does
            if self._again(job, attempt, exc):
                return
            log.exception("local batch run of %s failed", job.obj.input_key)
            reason = _reason(exc, attempt)
            self._failed_run(run, reason, started, time.perf_counter() - began)

    def _again(self, job: Job, attempt: int, exc: Exception) -> bool:
        """Whether the run is lined up again, after a backoff, as a queue would deliver it."""
        if attempt > len(RETRY_DELAYS_S) or not _retryable(exc):
            return False
        delay = RETRY_DELAYS_S[attempt - 1]
        log.warning(
            "local batch run of %s failed (attempt %d of %d), retried in %.0f s: %s",
            job.obj.input_key,
            attempt,
            len(RETRY_DELAYS_S) + 1,
            delay,
            exc.message if isinstance(exc, AiaasError) else repr(exc),
        )
        self.queue.add(job, attempt + 1, delay)
        return True

    def _failed_run(self, run: RunInput, reason: str, started: str, wall_s: float) -> None:
        """Publish the failure as the run's summary, unless the run finished (it failed after
        its commit point); remembered after, for when the store cannot take the summary either
        (before, a status read the failure without the summary's counts)."""
        try:
            if finished_summary(self.store, run) is None:
                chunk_rows = self.service.settings.chunk_rows
                summary = base_summary(run, None, started)
                failed = failed_summary(summary, reason, wall_s, shards=1, chunk_rows=chunk_rows)
                publish_failure(self.store, run, failed)
        except Exception:
            log.exception("the failed summary of %s could not be written", run.obj.input_key)
        with self._lock:
            self._failed[run.obj.input_key] = (run.info.etag, reason)
            self._failed.move_to_end(run.obj.input_key)
            while len(self._failed) > KEPT_FAILURES:
                self._failed.popitem(last=False)


def _retryable(exc: Exception) -> bool:
    """What a queue would deliver again: all but a refusal (a 4xx) the run did not publish."""
    return not isinstance(exc, AiaasError) or exc.status >= HTTPStatus.INTERNAL_SERVER_ERROR


def _reason(exc: Exception, attempts: int) -> str:
    """What the job's status says of a run that raised: a 5xx's public answer only (the log
    has the rest), a blocked key's clash as the caller is told it."""
    if isinstance(exc, KeyClash):
        said = exc.clash
    elif isinstance(exc, AiaasError):
        said = exc.message if exc.status < 500 else public_answer(exc)
    else:
        said = "internal error"
    tries = f" {attempts} times" if attempts > 1 else ""
    return (
        f"the run failed{tries}: {said}; the server's log says why (submit the job again to retry)"
    )


def local_runs(store: ObjectStore) -> LocalRuns | None:
    """For a directory store (no S3 notifications): a scorer of submitted jobs; in the one
    process `aiaas serve` asks, it lines up again the jobs its last stop left (left_jobs.py)."""
    if store.location.notifies:  # S3 fires the event itself
        return None
    from functions.batch.service import BatchService
    from functions.control.left_jobs import resume
    from functions.runtime.batch.settings import BatchSettings
    from functions.runtime.pool import ModelPool

    settings = BatchSettings.from_env()
    runs = LocalRuns(store, BatchService(store, ModelPool(Registry(store)), settings))
    before = settings.local_resume_before
    if before is not None:  # the start does not wait for it
        threading.Thread(
            target=resume, args=(runs, before), name="aiaas-local-batch-resume", daemon=True
        ).start()
    return runs
