"""Sharded runs for big inputs: plan -> score each shard (in parallel) -> merge.

The same three steps run in the cloud (a Step Functions Distributed Map invoking the batch
function once per shard) and locally (`aiaas batch --shards N`, a process pool: shard_pool.py).
Text inputs split at byte offsets (a shard owns the records that start in its range; a CSV one
starts at a record), NPY inputs at rows.
Shard parts go under `batch/<model>/work/<run id>/`; the merge concatenates them in order,
so the output is byte for byte what a single run writes, and then deletes them (`work.py`).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.runtime.batch.job import SpanResult, Told, even_spans, open_job, score_span
from functions.runtime.batch.layout import BATCH_PREFIX, WORK_DIR, parse_input_key
from functions.runtime.batch.merge import part_prefix, write_merged
from functions.runtime.batch.npy import ArraySink, npy_header_bytes
from functions.runtime.batch.records import (
    RunIdentity,
    RunPlan,
    RunSummary,
    ShardPart,
    ShardTask,
)
from functions.runtime.batch.run import (
    RunInput,
    base_summary,
    failed_summary,
    finish_summary,
    finished_summary,
    open_run,
    publish_failure,
    score_text,
    skipped,
)
from functions.runtime.batch.scoring import label_width
from functions.runtime.batch.settings import DEFAULT_CHUNK_ROWS, BatchSettings
from functions.runtime.batch.source import MAX_LINE_BYTES, ByteRange
from functions.runtime.batch.status import BatchTask, RunStatus
from functions.runtime.batch.work import PLAN_FILE, remove_work
from functions.runtime.errors import AiaasError, BadRequest, ModelNotFound
from functions.runtime.manifest import ModelManifest, utc_now
from functions.runtime.pool import ModelPool
from functions.runtime.store import ObjectInfo, ObjectStore

log = logging.getLogger("aiaas.batch")


def run_from(store: ObjectStore, item: Mapping[str, Any]) -> RunInput:
    """The run a plan or shard payload belongs to, as of the ETag it was planned for."""
    obj = parse_input_key(str(item["input"]))
    if obj is None:
        raise BadRequest(f"{item['input']!r} is not a batch input key (batch/<model>/input/<file>)")
    size = int(item["size"])
    return RunInput(obj, str(item["bucket"]), ObjectInfo(obj.input_key, size, str(item["etag"])))


def plan_run(
    store: ObjectStore,
    pool: ModelPool,
    run: RunInput,
    shards: int,
    settings: BatchSettings,
) -> RunPlan | RunSummary:
    """Check the input, pin the model version and write the shard list (`plan.json`); the
    summary instead when the run is finished already or its input cannot be read."""
    if shards < 1:
        raise BadRequest(f"shards must be at least 1, got {shards}")
    done = finished_summary(store, run)
    if done is not None:
        remove_work(store, run.obj.work_prefix(run.run_id))  # left by a merge, if any
        return skipped(done)
    started, started_unix = utc_now(), time.time()
    sweep_work(store, run.obj.model, keep=run.obj.work_prefix(run.run_id))
    opened = open_run(store, pool, run, started, settings, shards=shards)
    if isinstance(opened, dict):
        return opened
    manifest, job = opened
    if not job.format.splittable:  # a gzip stream is read in one piece: one shard
        shards = 1
    identity = RunIdentity(
        run_id=run.run_id,
        bucket=run.bucket,
        input=run.obj.input_key,
        etag=run.info.etag,
        size=run.info.size,
        model=run.obj.model,
        version=manifest.version,
        started_at=started,
        started_unix=started_unix,
        work=run.obj.work_prefix(run.run_id),
        shards=shards,
        chunk_rows=job.chunk_rows,
    )
    items = [
        ShardTask(**identity, aiaas_batch=BatchTask.SHARD, index=index, start=start, end=end)
        for index, (start, end) in enumerate(even_spans(job, shards))
    ]
    plan_key = f"{identity['work']}/{PLAN_FILE}"
    store.put_bytes(plan_key, json.dumps(items).encode())
    return RunPlan(
        **identity, status=RunStatus.PLANNED, aiaas_batch=BatchTask.MERGE, plan_key=plan_key
    )


def score_shard(
    store: ObjectStore,
    pool: ModelPool,
    item: Mapping[str, Any],
    settings: BatchSettings,
    progress: Told | None = None,
) -> ShardPart:
    """Score one shard of a plan into its part objects; a finished shard is not redone. Its
    chunk size is the plan's; `settings` say whether a big text shard uses worker processes."""
    prefix = part_prefix(item)
    try:
        previous: ShardPart = json.loads(store.get_bytes(f"{prefix}.json"))
        if scored_for(previous, item):  # a retried shard: its parts are this plan's
            return previous
    except (AiaasError, ValueError):
        pass
    run = run_from(store, item)
    model = pool.load(_pinned_manifest(pool, run, str(item["version"])))
    info = store.head(run.obj.input_key)
    chunk_rows, most = int(item["chunk_rows"]), settings.max_line_bytes
    job = open_job(store, model, run.obj, info, chunk_rows, most, progress)
    if job.info.etag != run.info.etag:
        raise AiaasError(f"{run.obj.input_key} changed since run {run.run_id} was planned")
    span = ByteRange(int(item["start"]), int(item["end"]))
    with store.open_write(f"{prefix}.errors.jsonl") as errors:
        if job.format.text:
            with store.open_write(f"{prefix}.body") as body:
                result = score_text(job, span, body, errors, settings)
        else:
            result = _score_arrays(job, span, errors, prefix)
    part = ShardPart(
        run_id=item["run_id"],
        index=item["index"],
        start=int(item["start"]),
        end=int(item["end"]),
        version=str(item["version"]),
        chunk_rows=chunk_rows,
        rows=result.rows,
        scored=result.scored,
        failed=result.failed,
        lines=result.lines,
        timings=result.timings,
    )
    store.put_bytes(f"{prefix}.json", json.dumps(part).encode())
    return part


def scored_for(part: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether `part` holds shard `item` of its plan: the same run (input bytes), rows (span),
    version and chunk size. A part of another plan of that run (a killed run's, re-planned
    with other --shards or after the alias moved) is not: it holds other rows, or other
    answers, so it is scored again, never merged (it had duplicated rows, or mixed versions)."""
    return (
        part.get("run_id") == item["run_id"]
        and part.get("index") == item["index"]
        and part.get("start") == int(item["start"])
        and part.get("end") == int(item["end"])
        and part.get("version") == str(item["version"])
        and part.get("chunk_rows") == int(item["chunk_rows"])
    )


def _pinned_manifest(pool: ModelPool, run: RunInput, version: str) -> ModelManifest:
    """The version the plan pinned; gone since (a prune or delete that did not see the run:
    batch/pinned.py), a final failure that says what to do, not the registry's advice for a
    deployment pinned to a version."""
    try:
        return pool.registry.manifest(run.obj.model, version)
    except ModelNotFound:
        name = run.obj.model
        raise ModelNotFound(
            f"{name}:{version}, the version this sharded run pinned when it was planned, was "
            f"deleted while the run scored (`aiaas versions {name}` shows the prune); score "
            f"the input again under another name, e.g. `aiaas batch {name} FILE --name NEW` "
            f"or an upload to another key, and it is scored with the version {name} serves now"
        ) from None


def _score_arrays(job: Any, span: ByteRange, errors: Any, prefix: str) -> SpanResult:
    with tempfile.TemporaryDirectory(prefix="aiaas-shard-") as tmp:
        sink = ArraySink(job.fields, Path(tmp), label_width(job.model.manifest))
        result = score_span(job, span, sink, errors)
        for index, array in enumerate(sink.bodies()):
            with job.store.open_write(f"{prefix}/{index}.npy") as out:
                out.write(npy_header_bytes(array.dtype, (array.rows, *array.row_shape)))
                array.copy_to(out)
    return result


def merged_result(parts: list[ShardPart]) -> SpanResult:
    result = SpanResult()
    for part in parts:
        result.add(part)
    return result


def merge_run(
    store: ObjectStore, plan: Mapping[str, Any], max_line_bytes: int = MAX_LINE_BYTES
) -> RunSummary:
    """Concatenate the shard parts into the output, errors and summary; drop the parts (the
    CSV header is read again, as the shards read it: a line of at most `max_line_bytes`)."""
    run = run_from(store, plan)
    done = finished_summary(store, run)
    if done is not None:  # the state machine retrying a merge whose cleanup failed, say
        remove_work(store, str(plan["work"]))
        return skipped(done)
    began = time.perf_counter()
    items = [{**plan, "index": i} for i in range(int(plan["shards"]))]
    parts: list[ShardPart] = [
        json.loads(store.get_bytes(f"{part_prefix(item)}.json")) for item in items
    ]
    # The plan as its shards read it: re-planned since (a re-run of the same bytes), its
    # parts may be another plan's; never merged, whatever their number.
    planned: list[ShardTask] = json.loads(store.get_bytes(f"{plan['work']}/{PLAN_FILE}"))
    ours = len(planned) == len(parts) and all(
        str(item["version"]) == str(plan["version"])
        and int(item["chunk_rows"]) == int(plan["chunk_rows"])
        and item.get("started_unix") == plan.get("started_unix")
        for item in planned
    )
    for index, part in enumerate(parts):
        if not ours or not scored_for(part, planned[index]):
            raise AiaasError(
                f"shard {index} of run {run.run_id} holds the parts of another plan "
                f"of that input (an earlier run of it, killed, still writing?); nothing was "
                f"published: run it again"
            )
    base = base_summary(run, None, plan["started_at"])
    base["version"] = plan["version"]

    def finish() -> RunSummary:
        result = merged_result(parts)
        result.timings["merge_s"] = time.perf_counter() - began
        wall = time.time() - _started(plan)
        shards, chunk_rows = int(plan["shards"]), int(plan["chunk_rows"])
        return finish_summary(base, result, wall, shards=shards, chunk_rows=chunk_rows)

    summary = write_merged(store, run, plan, parts, base.copy(), finish, max_line_bytes)
    remove_work(store, str(plan["work"]))  # the run is committed: a failure here is only logged
    return summary


def fail_run(
    store: ObjectStore, plan: Mapping[str, Any], reason: str, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> RunSummary:
    """Record a sharded run that failed (the state machine's catch-all) and drop its parts; a
    run whose summary was committed before the failure keeps that summary. A run that failed
    while planning has no plan's shards (0) nor chunk size (`chunk_rows`, the settings')."""
    run = run_from(store, plan)
    done = finished_summary(store, run)
    if done is None:
        summary = base_summary(run, None, plan["started_at"])
        summary["version"] = plan.get("version")
        wall = time.time() - _started(plan)
        failed = failed_summary(
            summary,
            reason,
            wall,
            shards=int(plan.get("shards", 0)),
            chunk_rows=int(plan.get("chunk_rows", chunk_rows)),
        )
        done = publish_failure(store, run, failed)
    remove_work(store, str(plan["work"]))
    return done


def _started(plan: Mapping[str, Any]) -> float:
    """When the run was planned, to the microsecond (`started_at` is whole seconds; a plan made
    before `started_unix` existed has only that)."""
    if "started_unix" in plan:
        return float(plan["started_unix"])
    from datetime import datetime

    return datetime.fromisoformat(plan["started_at"].replace("Z", "+00:00")).timestamp()


def sweep_work(store: ObjectStore, model: str, keep: str) -> list[str]:
    """Remove the work folders `model`'s earlier runs left (`work.py`); the prefixes removed."""
    base = f"{BATCH_PREFIX}/{model}/{WORK_DIR}"
    swept: list[str] = []
    try:
        names = store.list_dirs(base)
    except AiaasError as exc:  # housekeeping: never the reason a new run fails
        log.warning("could not list %s to remove what earlier runs left: %s", base, exc.message)
        return swept
    for name in names:
        prefix = f"{base}/{name}"
        if prefix != keep and _run_is_over(store, prefix) and remove_work(store, prefix):
            swept.append(prefix)
    return swept


def _run_is_over(store: ObjectStore, prefix: str) -> bool:
    """Finished (its summary names it), or never to finish (its input was replaced since it was
    planned). A folder without a plan, or whose input is gone, is left alone."""
    try:
        run = run_from(store, json.loads(store.get_bytes(f"{prefix}/{PLAN_FILE}"))[0])
        if finished_summary(store, run) is not None:
            return True
        return store.head(run.obj.input_key).etag != run.info.etag
    except (AiaasError, ValueError, LookupError):  # unreadable: not this sweep's to judge
        return False
