"""`aiaas batch --shards N`: the Distributed Map's plan run by a local process pool.

The same plan, shard and merge steps as the state machine (shards.py), the shards scored on
spawned processes, one store and model pool each, as Lambda containers have them. A shard's
final failure is recorded as the state machine's RecordFailure records it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from dataclasses import replace
from typing import Any

from functions.runtime.batch.job import Told
from functions.runtime.batch.records import RunSummary, ShardPart, ShardTask
from functions.runtime.batch.run import RunInput, is_input_error
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.batch.shards import fail_run, merge_run, plan_run, score_shard
from functions.runtime.batch.worker_stops import die_with, quiet_on_ctrl_c
from functions.runtime.errors import AiaasError
from functions.runtime.onnx_session import cpu_count
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore, open_store

UNWIND_S = 10.0  # how long a shard worker told to stop may take to unwind before it is killed
_WORKER_POOLS: dict[str, tuple[ObjectStore, ModelPool]] = {}
_SCORED: Any = None  # the parent's shared (rows scored, what they read) (a multiprocessing Array)
PROGRESS_EVERY_S = 0.2  # how often the parent reads that count while shards score


def _count_rows(rows: int, read: int) -> None:
    with _SCORED.get_lock():
        _SCORED[0] += rows
        _SCORED[1] += read


def score_shard_in_process(store_uri: str, settings: BatchSettings, item: ShardTask) -> ShardPart:
    """A pool worker: one store and ModelPool per process, as one Lambda container has."""
    if store_uri not in _WORKER_POOLS:
        store = open_store(store_uri)
        _WORKER_POOLS[store_uri] = (store, ModelPool(Registry(store)))
    store, pool = _WORKER_POOLS[store_uri]
    try:
        return score_shard(store, pool, item, settings, _count_rows)
    except SystemExit as stop:  # a stop signal, unwound (temp files gone): leave for real
        # Returned as this task's failure, the pool would hand this process the next shard,
        # to score with stop signals ignored, while the parent removes the work folder.
        os._exit(stop.code if isinstance(stop.code, int) else 1)


def _start_worker(scored: Any, parent: int) -> None:
    global _SCORED
    _SCORED = scored
    quiet_on_ctrl_c()  # its SIGTERM handler unwinds: the parent's death below removes temp files
    die_with(parent)


def run_sharded_locally(
    store: ObjectStore,
    pool: ModelPool,
    run: RunInput,
    shards: int,
    settings: BatchSettings,
    *,
    workers: int | None = None,
    progress: Told | None = None,
) -> RunSummary:
    """Plan, score every shard in a process pool, merge: what the state machine does. A shard's
    final failure (a 4xx: the model refusing every row of the first chunk) is recorded, as its
    RecordFailure step does, in the failed summary one process writes for it, reason included;
    a retryable one raises, as one process's does: the outcome does not depend on shards.
    `progress` is told the rows scored and the input read so far (workers count each chunk)."""
    plan = plan_run(store, pool, run, shards, settings)
    if "plan_key" not in plan:  # a summary: finished before, or the input is unreadable
        return plan
    items: list[ShardTask] = json.loads(store.get_bytes(plan["plan_key"]))
    # Shards are the parallelism here: no worker processes inside a shard unless asked for.
    per_shard = settings if settings.workers else replace(settings, workers=1)
    try:
        _score_shards(store, run, items, per_shard, workers or min(shards, cpu_count()), progress)
    except AiaasError as exc:
        if not is_input_error(exc):  # retrying may help (the store): no summary, as one process
            raise
        return fail_run(store, plan, exc.message, settings.chunk_rows)
    return merge_run(store, plan, settings.max_line_bytes)


def _score_shards(
    store: ObjectStore,
    run: RunInput,
    items: list[ShardTask],
    settings: BatchSettings,
    count: int,
    progress: Told | None,
) -> None:
    """Score every shard on `count` spawned processes; the first failure stops the others."""
    # spawn, not fork: a forked child would inherit onnxruntime's thread pools mid-flight.
    context = multiprocessing.get_context("spawn")
    scored = context.Array("q", 2)
    with ProcessPoolExecutor(
        count, context, initializer=_start_worker, initargs=(scored, os.getpid())
    ) as executor:
        # Submitting every shard spawns the workers: they inherit the blocked
        # SIGINT. Here it is held only meanwhile, then delivered: a Ctrl-C is never lost.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            parts = [
                executor.submit(score_shard_in_process, store.uri, settings, item) for item in items
            ]
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        try:
            _wait_for(parts, scored, progress)
        except BaseException:
            _stop_workers(executor)
            # They are gone: a temp part one left (a signal between creating it and its
            # cleanup) is nobody's, however new.
            store.remove_abandoned(run.obj.work_prefix(run.run_id), settled_s=0)
            raise


def _wait_for(parts: list[Future[ShardPart]], scored: Any, progress: Told | None) -> None:
    """Every part scored, or the first failure raised; meanwhile `progress` hears the count."""
    every = PROGRESS_EVERY_S if progress is not None else None
    while True:
        done, pending = wait(parts, timeout=every, return_when=FIRST_EXCEPTION)
        if progress is not None:
            progress(int(scored[0]), int(scored[1]))
        for part in done:
            part.result()  # raises a shard's failure, at once
        if not pending:
            return


def _stop_workers(executor: ProcessPoolExecutor) -> None:
    """The run is over (interrupted, or a shard failed): stop the shards still scoring and wait
    for them, so none writes a part after the caller removed the work folder. A Ctrl-C reached
    them already; a SIGTERM to this process alone (`kill`, `timeout`) did not, and leaving the
    pool's exit to them let them score to the end, or orphaned them when this process died.
    They unwind on SIGTERM (`worker_stops.quiet_on_ctrl_c`), removing their temp files.
    One still running UNWIND_S later is killed: its SystemExit can be swallowed where it lands
    (a library's `except BaseException`), and it then scored its shard to the end with stop
    signals ignored, the run's stop waiting for it (1 CI run: still going 30 s after a
    `kill`). The caller removes what a killed one left in the work folder."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + UNWIND_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join()
    executor.shutdown(wait=True, cancel_futures=True)
