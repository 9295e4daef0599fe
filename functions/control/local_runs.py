"""Batch jobs on a directory store, scored on a thread of the control plane (a directory has no
S3 notifications). In AWS a run that raises is retried by its queue and ends in the dead-letter
queue; here nobody retries it, so a run that fails without a finished summary is failed with
the reason: its thread died with "File name too long", or on a corrupt manifest, and the job
read "pending" for good.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from functions.runtime.batch.run import (
    RunInput,
    base_summary,
    failed_summary,
    finished_summary,
    publish_failure,
)
from functions.runtime.errors import AiaasError, KeyClash, public_answer
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


class LocalRuns:
    """Scores submitted jobs of a directory store, each on its own thread."""

    def __init__(self, store: ObjectStore, service: BatchService) -> None:
        self.store = store
        self.service = service
        self._failed: OrderedDict[str, tuple[str, str]] = OrderedDict()  # key: (etag, reason)
        self._lock = threading.Lock()

    def start(self, job: Job) -> None:
        """Score `job`'s input as it is now, on a thread of its own."""
        threading.Thread(
            target=self._score, args=(job,), name="aiaas-control-batch", daemon=True
        ).start()

    def failure(self, input_key: str, etag: str) -> str | None:
        """Why the run of this very input (its `etag`) failed, where no summary could say so."""
        with self._lock:
            failed = self._failed.get(input_key)
        return failed[1] if failed is not None and failed[0] == etag else None

    def _score(self, job: Job) -> None:
        from functions.batch.events import ObjectCreated

        try:
            info = self.store.head(job.obj.input_key)
        except AiaasError as exc:  # gone (or unreadable) already: no run of it to fail
            log.warning("local batch run of %s: %s", job.obj.input_key, exc.message)
            return
        run = RunInput(job.obj, self.store.location.bucket, info)
        started, began = utc_now(), time.perf_counter()
        try:
            event = ObjectCreated(run.bucket, job.obj.input_key, info.etag, info.size)
            self.service.on_object(event)
        except Exception as exc:  # the thread has no caller to tell: the job's status does
            log.exception("local batch run of %s failed", job.obj.input_key)
            self._failed_run(run, _reason(exc), started, time.perf_counter() - began)

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


def _reason(exc: Exception) -> str:
    """What the job's status says of a run that raised: a 5xx's public answer only (the log
    has the rest), a blocked key's clash as the caller is told it."""
    if isinstance(exc, KeyClash):
        said = exc.clash
    elif isinstance(exc, AiaasError):
        said = exc.message if exc.status < 500 else public_answer(exc)
    else:
        said = "internal error"
    return f"the run failed: {said}; the server's log says why (submit the job again to retry)"


def local_runs(store: ObjectStore) -> LocalRuns | None:
    """For a directory store (no S3 notifications): a scorer of submitted jobs."""
    if store.location.notifies:  # S3 fires the event itself
        return None
    from functions.batch.service import BatchService
    from functions.runtime.batch.settings import BatchSettings
    from functions.runtime.pool import ModelPool

    return LocalRuns(
        store, BatchService(store, ModelPool(Registry(store)), BatchSettings.from_env())
    )
