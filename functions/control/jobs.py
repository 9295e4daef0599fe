"""Batch jobs as the control plane sees them: put an input in place, then read its summary.

A job is one object under `batch/<model>/input/`; the batch function (S3 -> SQS in the cloud)
scores it and writes `<output>.summary.json` last. Submitting therefore only places the input;
status compares the summary with the input's current ETag, so a replaced input reads as pending
until its own run has finished (a summary still `publishing` reads as pending too). A local
directory store has no S3 notifications, so there the control plane lines the same object up
for the batch service (functions/control/local_runs.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from functions.control.local_runs import LocalRuns
from functions.control.paging import page
from functions.control.upload_body import check_upload
from functions.runtime import names
from functions.runtime.batch.layout import (
    BATCH_PREFIX,
    INPUT_DIR,
    BatchObject,
    NameTooLong,
    ReportName,
    UnsupportedFormat,
    check_room,
    parse_input_key,
    run_id,
)
from functions.runtime.batch.layout import input_key as batch_input_key
from functions.runtime.batch.rescore import already_scored, version_now
from functions.runtime.batch.stalls import Queues, stall
from functions.runtime.batch.status import FINISHED, RunStatus
from functions.runtime.batch.work import PLAN_FILE
from functions.runtime.errors import BadRequest, Conflict, InvalidName, KeyClash, NotFound
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectInfo, ObjectStore

log = logging.getLogger("aiaas.control")

UPLOADS_PREFIX = "uploads"  # where big inputs are put (e.g. `aws s3 cp`) before a submit
LIST_LIMIT = 1000


@dataclass(frozen=True)
class Job:
    """Where a job's input is and where its results will appear (store keys)."""

    obj: BatchObject

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.obj.model,
            "file": self.obj.file,
            "input": self.obj.input_key,
            "output": self.obj.output_key,
            "errors": self.obj.errors_key,
            "summary": self.obj.summary_key,
        }


def job_for(model: str, file: str) -> Job:
    """The job for input `file` of `model`; rejects names and formats batch cannot read."""
    # The event path's rule (parse_input_key): every input an S3 event scores has a status.
    obj = parse_input_key(batch_input_key(model, names.job_file_name(file)))
    assert obj is not None  # job_file_name refused empty, '.' and '..' parts
    _ = obj.format  # UnsupportedFormat (400) names the formats batch reads
    return Job(obj)


@contextlib.contextmanager
def named_by_caller(*, read: bool) -> Iterator[None]:
    """Keys a caller names (a job's file, data to compare) that another key blocks on a
    directory store (`a.csv` and `a.csv/b.csv`): no such object on a read, the caller's 409 on
    a write, not the store's 503 "the model store failed"."""
    try:
        yield
    except KeyClash as exc:
        raise (NotFound(exc.clash) if read else Conflict(exc.clash)) from None


class JobBook:
    """Submit and follow batch jobs on one store."""

    def __init__(
        self, store: ObjectStore, registry: Registry, run_locally: LocalRuns | None
    ) -> None:
        self.store = store
        self.registry = registry
        self.run_locally = run_locally
        self.queues = Queues()  # asked only of a job pending past 7.5 h on S3

    def submit_bytes(
        self, model: str, file: str, data: bytes, content_type: str = ""
    ) -> dict[str, Any]:
        """Upload `data` (sent as `content_type`) as the input of a new job."""
        job = self._new_job(model, file)
        if not data:
            raise BadRequest("the request body is empty: send the file's bytes as the body")
        check_upload(job.obj, data, content_type)
        with self._place_for(job):
            with named_by_caller(read=False):
                self.store.put_bytes(job.obj.input_key, data)
            return self._started(job)

    def submit_copy(self, model: str, source: str, file: str | None) -> dict[str, Any]:
        """Copy an object already in the store (under `uploads/`) in as a job's input."""
        if not source.startswith(f"{UPLOADS_PREFIX}/") or source.endswith("/"):
            raise BadRequest(
                f"source {names.shown(source)} must be a store key under '{UPLOADS_PREFIX}/', "
                f"e.g. '{UPLOADS_PREFIX}/data.csv'"
            )
        names.store_key(source, "source")
        # An empty name is refused, not replaced by the source's (said nothing of it).
        job = self._new_job(model, source.rsplit("/", 1)[-1] if file is None else file)
        if not self.store.exists(source):
            raise NotFound(f"no object {source!r} in the store; upload it there first")
        with self._place_for(job):
            with named_by_caller(read=False):
                self.store.copy(source, job.obj.input_key)
            return self._started(job)

    def status(self, model: str, file: str) -> dict[str, Any]:
        """The job's summary when its current input has been scored, else `pending`; an input
        there in a format batch does not read is `refused`, as its listing says."""
        try:
            job = job_for(model, file)
            check_room(job.obj, self.store.name_bytes)  # one taken before it was checked
        except (UnsupportedFormat, ReportName, NameTooLong) as exc:
            if not self.store.exists(batch_input_key(model, file)):
                raise
            return self._refused(model, file, exc.message)
        summary = self._summary(job)
        try:
            with named_by_caller(read=True):
                info = self.store.head(job.obj.input_key)
        except NotFound:
            if summary is None:
                raise NotFound(f"no batch job {file!r} for model {model!r}") from None
            return {**job.describe(), **summary, "input_deleted": True}
        etag = info.etag
        if scored(summary, etag) and not _before(summary, info.modified):
            return {**job.describe(), **summary}
        failed = (
            None if self.run_locally is None else self.run_locally.failure(job.obj.input_key, etag)
        )
        if failed is not None:  # a local run that could not write its summary saying so
            return {**job.describe(), "status": RunStatus.FAILED, "etag": etag, "error": failed}
        pending = {**job.describe(), "status": RunStatus.PENDING, "etag": etag}
        held = None if self.run_locally is not None else stall(info.modified, self.queues)
        # The record read again after the queues: a run ending meanwhile read as no message
        if held is not None and not self._recorded(job, self._summary(job), info):
            return {**pending, **held.fields()}
        return pending

    def list(
        self, model: str, after: str | None = None, limit: int = LIST_LIMIT
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The inputs of `model` after `after` (a file name), `limit` of them, with their status
        (two store reads each: only the page's are read); and the next page's `after`. Listed
        from `after` on and only as far as the page: each page listed the whole folder (100
        S3 requests a page of a folder of 100,000 inputs, a year of hourly files for 11 models)."""
        self.registry.versions(model)  # 404 for an unknown model
        prefix = f"{BATCH_PREFIX}/{model}/{INPUT_DIR}/"
        files: list[str] = []
        refused: dict[str, str] = {}  # a key S3 took that no run scores: said, not hidden
        for key in self.store.list_keys(
            prefix.rstrip("/"), after="" if after is None else prefix + after
        ):
            if not names.is_text(key):  # no key S3 could hold, nor a JSON answer name: a 500
                log.warning("left out of the job list: %r is not UTF-8", key)
                continue
            try:
                obj = parse_input_key(key)
                # `notes.txt`: never scored (one with no extension is no job: left out, as the
                # batch function leaves it)
                _ = obj is not None and obj.extension and obj.format
            except InvalidName as exc:
                files.append(key[len(prefix) :])
                refused[files[-1]] = f"{exc.message}; upload it under such a name to score it"
            except (UnsupportedFormat, ReportName) as exc:  # a 400 of the whole page, it was
                files.append(key[len(prefix) :])
                refused[files[-1]] = exc.message
            else:
                if obj is not None and obj.extension:
                    files.append(obj.file)
            if len(files) > limit:  # one more than the page: there is a next page
                break
        chosen, cursor = page(files, None, limit)  # in the store's order: S3's, by text
        return [
            self._refused(model, file, refused[file])
            if file in refused
            else self.status(model, file)
            for file in chosen
        ], cursor

    def _refused(self, model: str, file: str, reason: str) -> dict[str, Any]:
        """An object under input/ that the batch function refuses by its name (S3 takes
        `day2//x.csv`, `./x.csv`, a control character) or format (`notes.txt`): it is never
        scored."""
        input_key = f"{BATCH_PREFIX}/{model}/{INPUT_DIR}/{file}"
        return {
            "model": model,
            "file": file,
            "input": input_key,
            "status": RunStatus.REFUSED,
            "error": reason,
        }

    def _new_job(self, model: str, file: str) -> Job:
        job = job_for(model, file)
        check_room(job.obj, self.store.name_bytes)  # else taken, and its run could not finish
        self.registry.versions(model)  # a job for a model that does not exist would only fail
        return job

    def _place_for(self, job: Job) -> contextlib.AbstractContextManager[None]:
        """A local run's place in line, held while the input is placed: a 503 before it is
        placed when the line is full (S3's events line runs up in its own queue)."""
        if self.run_locally is None:
            return contextlib.nullcontext()
        return self.run_locally.place_for(job)

    def _started(self, job: Job) -> dict[str, Any]:
        """`pending`, or a 409 when no run will come: the same bytes again on S3 (the same ETag,
        so the same run id) are a finished run's, which is never redone."""
        etag = self.store.head(job.obj.input_key).etag
        done = self._summary(job)
        # A dead-lettered failure holds no run as done: the same bytes again are scored.
        if scored(done, etag) and not done.get("dead_lettered"):
            now = version_now(self.registry, job.obj.model)
            raise Conflict(already_scored(job.obj, done, now))
        if self.run_locally is not None:
            self.run_locally.start(job)
        return {**job.describe(), "status": RunStatus.PENDING, "etag": etag}

    def _summary(self, job: Job) -> dict[str, Any] | None:
        return run_summary(self.store, job)

    def _recorded(self, job: Job, summary: dict[str, Any] | None, info: ObjectInfo) -> bool:
        """Whether this upload's run has left a record: its summary (`publishing`), or the plan
        of a sharded run, which the state machine scores for as long as it takes."""
        if summary is not None and summary.get("etag") == info.etag:
            return not _before(summary, info.modified)  # not the earlier message's failure
        run = run_id(self.store.location.bucket, job.obj.input_key, info.etag)
        return self.store.exists(f"{job.obj.work_prefix(run)}/{PLAN_FILE}")


def run_summary(store: ObjectStore, job: Job) -> dict[str, Any] | None:
    """The job's summary as it is now (of whichever run wrote it), if there is one (none where
    another key blocks its name on a directory store: `a.csv.summary.json/b.csv`)."""
    try:
        summary: dict[str, Any] = json.loads(store.get_bytes(job.obj.summary_key))
    except (NotFound, KeyClash, ValueError):
        return None
    return summary


def scored(summary: dict[str, Any] | None, etag: str) -> TypeGuard[dict[str, Any]]:
    """Whether `summary` is a finished run's of the input version `etag`: else its job is
    pending (a "publishing" summary is a run between its output and its commit point)."""
    return summary is not None and summary.get("etag") == etag and summary.get("status") in FINISHED


def _before(summary: dict[str, Any], uploaded: float) -> bool:
    """Whether `summary` is a dead-lettered failure finished before the input's last upload:
    the earlier message's, its bytes put again (what it says to do; on S3 the same ETag), whose
    run is pending. The job read `failed` with the old reason while that run scored it, and a
    client polling for the end stopped there (review_rev3 4). Both times are whole seconds: an
    upload within the second of the failure still reads it."""
    if not summary.get("dead_lettered") or not uploaded:
        return False
    try:
        finished = datetime.fromisoformat(str(summary.get("finished_at", ""))).timestamp()
    except ValueError:
        return False
    return int(uploaded) > finished
