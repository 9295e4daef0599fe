"""The JSON records a batch run writes and passes around, typed: summary, plan, shard, part.

They travel as JSON (the summary object in the store, the state machine's payloads, plan.json),
so they are TypedDicts: plain dicts at run time, checked shapes for mypy.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict, final


@final  # so that `"plan_key" in answer` tells a plan from a summary, for mypy too
class RunSummary(TypedDict):
    """`batch/<model>/output/<file>.summary.json`: written last, so a run is finished exactly
    when its summary names its run id."""

    run_id: str
    bucket: str
    input: str
    etag: str
    size: int
    format: str
    model: str
    version: str | None
    output: str
    errors: str
    started_at: str
    status: NotRequired[str]  # a RunStatus value
    previous_status: NotRequired[str]  # with status "skipped": how the earlier run ended
    error: NotRequired[str]
    rows: NotRequired[int]
    scored_rows: NotRequired[int]
    failed_rows: NotRequired[int]
    finished_at: NotRequired[str]
    timings: NotRequired[dict[str, float]]
    rows_per_second: NotRequired[float | None]
    shards: NotRequired[int]
    chunk_rows: NotRequired[int]
    # The failure the batch function recorded on a queue message's last delivery, before the
    # dead-letter queue: no run held finished, so a redrive scores the input afresh.
    dead_lettered: NotRequired[bool]


class RunIdentity(TypedDict):
    """What a sharded run's plan and each of its shard tasks carry: the run and its version."""

    run_id: str
    bucket: str
    input: str
    etag: str
    size: int
    model: str
    version: str | None
    started_at: str
    started_unix: NotRequired[float]  # time.time() at planning: the merge's total_s counts from it
    work: str  # the run's work prefix, where shard parts go
    shards: int
    chunk_rows: int


class ShardTask(RunIdentity):
    """One item of `plan.json`: what one iteration of the Distributed Map scores."""

    aiaas_batch: str  # BatchTask.SHARD
    index: int
    start: int  # byte offset (text) or row (NPY)
    end: int


@final
class RunPlan(RunIdentity):
    """What planning answers: the state machine maps over `plan_object`, then merges."""

    status: str  # RunStatus.PLANNED
    aiaas_batch: str  # BatchTask.MERGE: the task the plan is handed to after the map
    plan_key: str  # the batch function adds where the map reads it: `plan_object`


class ShardPart(TypedDict):
    """`part-NNNNN.json`: a finished shard's counts (its body and errors lie beside it)."""

    run_id: str
    index: int
    # The plan it was scored for (a run id names the input's bytes, not one plan of them: a
    # SIGKILLed run's parts stay, and its re-run, with another --shards or after a promote,
    # plans again under the same id): a part is reused or merged only for the same shard.
    start: int
    end: int
    version: str
    chunk_rows: int
    rows: int
    scored: int
    failed: int
    lines: int
    timings: dict[str, float]
