"""A whole batch run of one input object: idempotent, atomic outputs, a summary written last.

The run id hashes bucket, key and ETag: a re-delivered event for the same object version finds
the finished summary and does nothing. Output, errors and summary are each published whole
(the stores' writes are atomic), in the commit order of `publishing`: a "publishing" summary
first (the previous run's no longer vouches for objects this run replaces), the output, the
errors, the finished summary last; so a run is finished exactly when its summary names its run
id, and a run's errors never appear beside an older run's output. An input that cannot be read
at all (empty, unknown format, header mismatch, unknown model) still gets a summary, with
status "failed" and the reason.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any

from functions.runtime.batch.commit import InputReplaced, Write, commit, deletes, puts
from functions.runtime.batch.job import Job, SpanResult, Told, open_job, score_span
from functions.runtime.batch.layout import (
    BatchObject,
    OutputShared,
    UnsupportedFormat,
    output_twins,
    run_id,
    twin_names,
)
from functions.runtime.batch.npy import ArraySink, write_npz
from functions.runtime.batch.records import RunSummary
from functions.runtime.batch.rescore import already_scored, stale_reason, version_now
from functions.runtime.batch.scoring import label_width
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.batch.source import ByteRange
from functions.runtime.batch.status import FINISHED, RunStatus
from functions.runtime.batch.work import remove_work
from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.manifest import ModelManifest, utc_now
from functions.runtime.pool import ModelPool
from functions.runtime.registry import ModelRef
from functions.runtime.store import ObjectInfo, ObjectStore

log = logging.getLogger("aiaas.batch")


@dataclass(frozen=True)
class RunInput:
    """One version of one input object: what a run is keyed by."""

    obj: BatchObject
    bucket: str
    info: ObjectInfo

    @property
    def run_id(self) -> str:
        return run_id(self.bucket, self.obj.input_key, self.info.etag)


def is_input_error(exc: AiaasError) -> bool:
    """Errors that retrying cannot fix (4xx): the object fails with a summary instead."""
    return exc.status < HTTPStatus.INTERNAL_SERVER_ERROR


def finished_summary(store: ObjectStore, run: RunInput) -> RunSummary | None:
    """The summary of this very run when it has finished, else None. A failure the batch
    function recorded as its queue message went to the dead-letter queue (`dead_lettered`)
    is no finished run: a redrive of that message scores the input afresh."""
    try:
        summary: RunSummary = json.loads(store.get_bytes(run.obj.summary_key))
    except (NotFound, ValueError):
        return None
    if summary.get("run_id") == run.run_id and summary.get("status") in FINISHED:
        return None if summary.get("dead_lettered") else summary
    return None


def skipped(done: RunSummary) -> RunSummary:
    """What a re-delivery of a finished run answers: its summary, marked skipped."""
    answer = done.copy()
    answer["status"], answer["previous_status"] = RunStatus.SKIPPED, done.get("status", "")
    return answer


def may_publish(store: ObjectStore, run: RunInput) -> bool:
    """False when the input has been replaced: its newer version owns the output keys."""
    try:
        return store.head(run.obj.input_key).etag == run.info.etag
    except NotFound:
        return True  # deleted since: still record what this run did


def base_summary(run: RunInput, manifest: ModelManifest | None, started: str) -> RunSummary:
    return {
        "run_id": run.run_id,
        "bucket": run.bucket,
        "input": run.obj.input_key,
        "etag": run.info.etag,
        "size": run.info.size,
        "format": run.obj.extension.lstrip("."),
        "model": run.obj.model,
        "version": manifest.version if manifest else None,
        "output": run.obj.output_key,
        "errors": run.obj.errors_key,
        "started_at": started,
    }


def finish_summary(
    summary: RunSummary, result: SpanResult, wall_s: float, *, shards: int, chunk_rows: int
) -> RunSummary:
    """Add counts, timings and the status: a run fails only when no row could be scored."""
    status = RunStatus.FAILED if result.rows and not result.scored else RunStatus.SUCCEEDED
    summary["status"] = status
    summary["rows"] = result.rows
    summary["scored_rows"] = result.scored
    summary["failed_rows"] = result.failed
    summary["finished_at"] = utc_now()
    timings = {k: round(v, 4) for k, v in result.timings.items()}
    summary["timings"] = timings | {"total_s": round(wall_s, 4)}
    summary["rows_per_second"] = round(result.rows / wall_s, 1) if wall_s > 0 else None
    summary["shards"] = shards
    summary["chunk_rows"] = chunk_rows
    if status == RunStatus.FAILED:
        summary["error"] = (
            f"none of the {result.rows} rows could be scored; see {summary['errors']}"
        )
    return summary


def failed_summary(
    summary: RunSummary, reason: str, wall_s: float, *, shards: int, chunk_rows: int
) -> RunSummary:
    """A run that failed before it scored a row."""
    return unscored(summary, RunStatus.FAILED, reason, wall_s, shards=shards, chunk_rows=chunk_rows)


def unscored(
    summary: RunSummary,
    status: RunStatus,
    reason: str,
    wall_s: float,
    *,
    shards: int,
    chunk_rows: int,
) -> RunSummary:
    """A run that ended without scoring, with the keys of a scored one (a script reads the
    same document whichever way a run ends): no rows, no rate, the time until it ended."""
    summary["status"] = status
    summary["error"] = reason
    summary["rows"] = summary["scored_rows"] = summary["failed_rows"] = 0
    summary["finished_at"] = utc_now()
    summary["timings"] = {"total_s": round(max(wall_s, 0.0), 4)}
    summary["rows_per_second"] = None
    summary["shards"] = shards
    summary["chunk_rows"] = chunk_rows
    return summary


def publish_failure(
    store: ObjectStore, run: RunInput, summary: RunSummary, *, owns_output: bool = True
) -> RunSummary:
    """The failed summary of a run that publishes no output, after removing the output and
    errors an older run of this input left (beside this summary they would read as its own);
    an output another input shares (`OutputShared`) is that input's and stays."""
    marker = summary | {"status": RunStatus.PUBLISHING}
    writes = [puts(store, run.obj.summary_key, lambda: _summary_bytes(marker))]
    writes.append(deletes(store, run.obj.errors_key))
    if owns_output:
        writes.append(deletes(store, run.obj.output_key))
    writes.append(puts(store, run.obj.summary_key, lambda: _summary_bytes(summary)))
    try:
        commit(store, lambda: check_unchanged(store, run), writes, _done(store, run), run.run_id)
    except InputReplaced as exc:
        log.warning("%s", exc.message)
    return summary


@dataclass
class Publication:
    """A run's output and errors, open for writing, and its finished summary, made (`finish`)
    when it is written, so its timings cover publishing the objects."""

    out: IO[bytes]
    errors: IO[bytes]
    finish: Callable[[], RunSummary] | None = None
    summary: RunSummary | None = None

    def final(self) -> RunSummary:
        if self.summary is None:
            if self.finish is None:
                raise AiaasError("a batch run published without a finished summary")
            self.summary = self.finish()
        return self.summary


@contextlib.contextmanager
def publishing(store: ObjectStore, run: RunInput, marker: RunSummary) -> Iterator[Publication]:
    """The run's output and errors, open for writing; a clean exit publishes them in the commit
    order (`commit.py`, each write conditional): `marker` as the summary, the output, the errors,
    the finished summary (`Publication.finish`). A failure anywhere before leaves the previous
    run's objects as they were; one after the marker leaves a summary that names no finished
    run, so a reader never sees this run's errors beside an older output vouched for by a
    summary. InputReplaced when a newer version of the input owns the objects."""
    keys = run.obj
    with store.open_staged(keys.errors_key) as errors, store.open_staged(keys.output_key) as out:
        publication = Publication(out.file, errors.file)
        yield publication
        publishing_bytes = _summary_bytes(marker | {"status": RunStatus.PUBLISHING})
        writes: list[Write] = [
            puts(store, keys.summary_key, lambda: publishing_bytes),
            (keys.output_key, out.publish),
            (keys.errors_key, errors.publish),
            puts(store, keys.summary_key, lambda: _summary_bytes(publication.final())),
        ]
        commit(store, lambda: check_unchanged(store, run), writes, _done(store, run), run.run_id)


def _done(store: ObjectStore, run: RunInput) -> Callable[[], bool]:
    """Whether a delivery of this very run committed (deliveries race, writing equal bytes)."""
    return lambda: finished_summary(store, run) is not None


def _summary_bytes(summary: RunSummary) -> bytes:
    return (json.dumps(summary, indent=2) + "\n").encode()


def load_default(pool: ModelPool, model: str) -> tuple[ModelManifest, Any]:
    """The registry's default version of `model` (production alias, else newest), loaded."""
    manifest = pool.registry.resolve(ModelRef(model))
    return manifest, pool.load(manifest)


def open_run(
    store: ObjectStore,
    pool: ModelPool,
    run: RunInput,
    started: str,
    settings: BatchSettings,
    progress: Told | None = None,
    shards: int = 1,
) -> tuple[ModelManifest, Job] | RunSummary:
    """Load the model and open the input; when the input cannot be read, the published
    failure summary instead (other errors propagate, so the event is retried)."""
    began = time.perf_counter()
    manifest: ModelManifest | None = None
    try:
        check_sole_writer(store, run.obj)
        manifest, model = load_default(pool, run.obj.model)
        job = open_job(
            store, model, run.obj, run.info, settings.chunk_rows, settings.max_line_bytes, progress
        )
        return manifest, job
    except AiaasError as exc:
        if not is_input_error(exc):
            raise
        wall = time.perf_counter() - began
        failed = failed_summary(
            base_summary(run, manifest, started),
            exc.message,
            wall,
            shards=shards,
            chunk_rows=settings.chunk_rows,
        )
        # An input batch does not read never had an output of its own: the key its name
        # maps to is another's (`rows.csv.summary.json` -> rows.csv's summary), left alone.
        foreign = isinstance(exc, OutputShared | UnsupportedFormat)
        return publish_failure(store, run, failed, owns_output=not foreign)


def check_sole_writer(store: ObjectStore, obj: BatchObject) -> None:
    """OutputShared when another input writes the same output key. Each of two such inputs
    sees the other (both exist before either's event), so neither publishes over the other's
    scores: when they arrive together both fail, and a later twin fails beside a scored one."""
    twins = output_twins(obj, store.list_files(obj.folder, twin_names(obj)))
    if twins:
        raise OutputShared(
            f"{obj.input_key} and {twins[0]} would both be scored into {obj.output_key}; "
            "rename one of them and upload it again"
        )


def run_object(
    store: ObjectStore,
    pool: ModelPool,
    run: RunInput,
    settings: BatchSettings,
    progress: Told | None = None,
) -> RunSummary:
    """Score a whole object into its output, errors and summary; skip a finished run.
    `progress` is told the rows of each chunk (or worker block) once scored, and what they
    read of the input."""
    done = finished_summary(store, run)
    if done is not None:
        now = version_now(pool.registry, run.obj.model)
        stale = stale_reason(run.obj.model, done, now) is not None  # else a duplicate delivery
        (log.warning if stale else log.info)("%s", already_scored(run.obj, done, now))
        remove_work(store, run.obj.work_prefix(run.run_id))  # a sharded run's merge left, if any
        return skipped(done)
    started, began = utc_now(), time.perf_counter()
    opened = open_run(store, pool, run, started, settings, progress)
    if isinstance(opened, dict):
        return opened
    manifest, job = opened

    def finish(result: SpanResult) -> RunSummary:
        wall = time.perf_counter() - began
        summary = base_summary(run, manifest, started)
        return finish_summary(summary, result, wall, shards=1, chunk_rows=job.chunk_rows)

    try:
        return score_whole(job, run, settings, base_summary(run, manifest, started), finish)
    except AiaasError as exc:
        if isinstance(exc, InputReplaced):
            log.warning("%s", exc.message)
            wall = time.perf_counter() - began
            return unscored(
                base_summary(run, manifest, started),
                RunStatus.SUPERSEDED,
                exc.message,
                wall,
                shards=1,
                chunk_rows=job.chunk_rows,
            )
        if not is_input_error(exc):
            raise
        # Found past the head (a gzip stream cut short): nothing was published; say why.
        wall = time.perf_counter() - began
        failed = failed_summary(
            base_summary(run, manifest, started),
            exc.message,
            wall,
            shards=1,
            chunk_rows=job.chunk_rows,
        )
        return publish_failure(store, run, failed)


def score_text(
    job: Job, span: ByteRange, target: IO[bytes], errors: IO[bytes], settings: BatchSettings
) -> SpanResult:
    """Score a text span in this process, or on worker processes when it is big enough and the
    settings allow: the one place that choice is made."""
    size = (job.info.size if span.end is None else span.end) - span.start
    workers = settings.workers_for(size, job.model.manifest.file.size)
    if workers <= 1 or not job.format.splittable:  # a gzip stream is read in one piece
        return score_span(job, span, target, errors)
    from functions.runtime.batch.parallel import worker_pool

    with worker_pool(workers) as pool:
        return pool.score_span(job, span, target, errors, settings.worker_ort_threads)


def score_whole(
    job: Job,
    run: RunInput,
    settings: BatchSettings,
    marker: RunSummary,
    finish: Callable[[SpanResult], RunSummary],
) -> RunSummary:
    """Score the job's whole input into its output and errors objects and publish them with
    the summary `finish` makes of the result (see `publishing`)."""
    with publishing(job.store, run, marker) as publication:
        out, errors = publication.out, publication.errors
        if job.format.text:
            out.write(job.format.output_head(job.fields))
            result = score_text(job, ByteRange(0, None), out, errors, settings)
        else:
            with tempfile.TemporaryDirectory(prefix="aiaas-batch-") as tmp:
                sink = ArraySink(job.fields, Path(tmp), label_width(job.model.manifest))
                result = score_span(job, ByteRange(0, None), sink, errors)
                write_npz(out, sink.bodies())
        publication.finish = functools.partial(finish, result)
    return publication.final()


def check_unchanged(store: ObjectStore, run: RunInput) -> None:
    if not may_publish(store, run):
        raise InputReplaced(
            f"{run.obj.input_key} was replaced while run {run.run_id} scored it; "
            "the new version's run writes the outputs"
        )
