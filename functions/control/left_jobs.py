"""The batch jobs a stopped `aiaas serve` left, lined up again when it starts.

A directory store's jobs wait in a line held in memory (functions/control/run_queue.py), which
a stop drops: each job queued or running then read `pending` for good after the next start,
until it was submitted again. In AWS the queue (SQS) holds them and delivers them again. Here
the start lines them up again: every input placed before the start whose summary is not of a
finished run of that very version (the rule `GET .../jobs/<file>` reads `pending` by), oldest
first: as many as the line has room for (`AIAAS_BATCH_LOCAL_QUEUE`) at once, the rest as it
frees, taking turns with new submissions (run_queue.py; before, they waited for the next
start). A run is keyed by the
input's version and publishes whole or not at all (functions/runtime/batch/run.py), so a run cut
off by the stop is simply run again; the temp files it was writing are removed.

`aiaas serve` asks it of one process only (`AIAAS_BATCH_LOCAL_RESUME_BEFORE`, its start's time:
infra/local/resume_claim.py): with `--workers N` each worker has a line of its own, and two lines
must not score the same jobs. What it reads: each model's input folder listed, and each input's
ETag and time and its summary; the output folders of the models with jobs left are swept of
temp files no process holds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from functions.control.jobs import Job, run_summary, scored
from functions.control.local_runs import LocalRuns
from functions.runtime import names
from functions.runtime.batch.layout import (
    BATCH_PREFIX,
    INPUT_DIR,
    OUTPUT_DIR,
    check_room,
    listed_input,
)
from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.control")


@dataclass(frozen=True)
class Left:
    """What the start found: the jobs to score, oldest first, and the models they are of."""

    jobs: list[Job]
    models: set[str]


def left_jobs(store: ObjectStore, before: float) -> Left:
    """The jobs whose input was placed before `before` and has no finished run: oldest first
    (by when the input was placed, then by key)."""
    found: list[tuple[float, str, Job]] = []
    models: set[str] = set()
    for model in store.list_dirs(BATCH_PREFIX):
        if not names.is_model_name(model):
            continue
        for key in store.list_keys(f"{BATCH_PREFIX}/{model}/{INPUT_DIR}"):
            job = _job(store, key)
            if job is None:
                continue
            try:
                info = store.head(key)
            except NotFound:  # deleted since the listing
                continue
            if info.modified >= before or scored(run_summary(store, job), info.etag):
                continue
            found.append((info.modified, key, job))
            models.add(model)
    found.sort(key=lambda left: left[:2])
    return Left([job for _, _, job in found], models)


def _job(store: ObjectStore, key: str) -> Job | None:
    """The job of an input key, or None for a key no run scores (the job list says "refused"
    of it, or leaves it out: a file with no extension)."""
    if not names.is_text(key):
        return None
    try:
        obj = listed_input(key)
        if obj is None or not obj.extension:
            return None
        _ = obj.format  # UnsupportedFormat, ReportName
        check_room(obj, store.name_bytes)
    except AiaasError:
        return None
    return Job(obj)


def resume(runs: LocalRuns, before: float) -> None:
    """Line up the jobs a stop left (`left_jobs`), say how many, and remove the temp files of
    the runs it cut off (`.tmp-*` beside their outputs, hidden from listings). Runs on a thread
    of its own: the start does not wait for it; a store that fails is logged, not raised."""
    began = time.perf_counter()
    try:
        left = left_jobs(runs.store, before)
    except Exception:
        log.exception("the batch jobs left pending by the last stop could not be listed")
        return
    if not left.jobs:
        return
    lined, behind = runs.queue.add_left(left.jobs)
    log.info(
        "lined up again %d batch job(s) left pending when this server last stopped, oldest "
        "first (listed in %.2f s)",
        lined,
        time.perf_counter() - began,
    )
    if behind is not None:
        log.info(
            "%d more batch job(s) wait behind the line, which holds %d "
            "(AIAAS_BATCH_LOCAL_QUEUE): they enter it as places free, taking turns with new "
            "submissions; the oldest is %s",
            len(left.jobs) - lined,
            runs.queue.room,
            behind.obj.input_key,  # (not jobs[lined]: a job lined already may come later)
        )
    settled_s = max(0.0, time.time() - before)  # a temp made since the start may be a live run's
    for model in sorted(left.models):
        try:
            runs.store.remove_abandoned(f"{BATCH_PREFIX}/{model}/{OUTPUT_DIR}", settled_s=settled_s)
        except Exception:
            log.warning(
                "the temp files of batch/%s/output could not be swept", model, exc_info=True
            )
