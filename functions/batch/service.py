"""What the batch function does with an announced object: ignore it, score it, or fan it out.

Kept apart from the Lambda event shapes (handler.py) so the CLI and tests drive the same code.
Inputs above `AIAAS_BATCH_SHARD_BYTES` go to the Step Functions state machine named by
`AIAAS_BATCH_STATE_MACHINE` when one is configured; everything else is scored right here.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from functions.batch.events import ObjectCreated, store_key, store_location
from functions.runtime.batch.job import Told
from functions.runtime.batch.layout import (
    BatchObject,
    OutputShared,
    UnsupportedFormat,
    parse_input_key,
)
from functions.runtime.batch.run import (
    RunInput,
    base_summary,
    check_sole_writer,
    failed_summary,
    finished_summary,
    publish_failure,
    run_object,
)
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.batch.shards import fail_run, merge_run, plan_run, run_from, score_shard
from functions.runtime.batch.status import RunStatus
from functions.runtime.errors import BadRequest, InvalidName, NotFound
from functions.runtime.manifest import utc_now
from functions.runtime.pool import ModelPool
from functions.runtime.store import ObjectInfo, ObjectStore
from functions.runtime.task_errors import task_error

log = logging.getLogger("aiaas.batch")


class BatchService:
    """One store and one model pool per container, shared by every invocation."""

    def __init__(
        self,
        store: ObjectStore,
        pool: ModelPool,
        settings: BatchSettings,
        progress: Told | None = None,  # `aiaas batch`: rows scored and bytes read, per chunk
    ) -> None:
        self.store = store
        self.pool = pool
        self.settings = settings
        self.progress = progress

    def on_object(self, event: ObjectCreated) -> Mapping[str, Any]:
        """Score (or fan out) one created object; keys that are no batch input are ignored."""
        key = store_key(self.store, event)
        if key is None:  # a rule or a store URI that does not match: every input would be lost
            _, prefix = store_location(self.store)
            reason = (
                f"outside this function's store, which is under {prefix!r} in the bucket "
                "(is the event rule's prefix, or AIAAS_STORE's, the other one?)"
            )
            log.warning("ignored s3://%s/%s: %s", event.bucket, event.key, reason)
            return {"status": RunStatus.IGNORED, "key": event.key, "reason": reason}
        try:
            obj = parse_input_key(key)
        except InvalidName as exc:  # S3 took a name no run can hold: the upload would vanish
            log.warning("ignored s3://%s/%s: %s", event.bucket, event.key, exc.message)
            return {"status": RunStatus.IGNORED, "key": event.key, "reason": exc.message}
        if obj is None:
            if key.endswith("/"):  # what the S3 console's "Create folder" writes
                return _ignored(event, "a folder marker (its key ends in '/'): nothing to score")
            return _ignored(event, "not under batch/<model>/input/")
        try:
            info = self.store.head(obj.input_key)
        except NotFound:
            return self._gone(event, key)
        if event.etag and event.etag.strip('"') != info.etag:
            log.info("%s changed since the event (ETag %s, now %s)", key, event.etag, info.etag)
        run = RunInput(obj, event.bucket, info)
        if (
            self.settings.state_machine
            and info.size > self.settings.shard_bytes
            and not finished_summary(self.store, run)
        ):
            return self.delegate(run, event.key)
        return run_object(self.store, self.pool, run, self.settings, self.progress)

    def dead_lettered(
        self, event: ObjectCreated, reason: str, receives: int, wall_s: float
    ) -> None:
        """The last delivery of a message whose run failed on each (the queue moves it to its
        dead-letter queue next): a failed summary saying so, marked `dead_lettered`, so the job
        reads `failed` with the reason, not `pending` for good. It holds no run as finished: a
        redrive of the message, or the same bytes uploaded again, scores the input afresh."""
        try:  # another bucket's event, a name no run takes, an object gone: no input to fail
            key = store_key(self.store, event)
            obj = parse_input_key(key) if key is not None else None
            info = self.store.head(obj.input_key) if obj is not None else None
        except (BadRequest, NotFound):
            return
        try:
            if obj is None or info is None:
                return
            run = RunInput(obj, event.bucket, info)
            if finished_summary(self.store, run) is not None:  # this one scored; another failed
                return
            error = (
                f"the run failed on each of the {receives} deliveries of its queue message, the "
                f"last with: {reason}; the message goes to the batch queue's dead-letter queue: "
                "once the cause is fixed, redrive it from there (or upload the file again)"
            )
            summary = base_summary(run, None, utc_now())
            chunk_rows = self.settings.chunk_rows
            failed = failed_summary(summary, error, wall_s, shards=1, chunk_rows=chunk_rows)
            failed["dead_lettered"] = True
            publish_failure(self.store, run, failed, owns_output=_owns_output(self.store, obj))
        except Exception:  # the store failing too: the message's own error is what is raised
            log.exception("could not record the failure of %s in its summary", event.key)

    def _gone(self, event: ObjectCreated, key: str) -> Mapping[str, Any]:
        """An event for an object not there: deleted since (S3 sends both events), or named
        in an event written by hand (`aiaas invoke -e`, docs/batch.md) with its key not
        URL-encoded, whose `+` was read as a space: said so, not "no longer exists" alone."""
        sent = store_key(self.store, ObjectCreated(event.bucket, event.sent, "", 0))
        try:  # a key S3 never sends: checked as any input key before the store is asked
            raw = parse_input_key(sent) if sent and "+" in sent and sent != key else None
        except InvalidName:
            raw = None
        if raw is None or not self.store.exists(raw.input_key):
            return _ignored(event, "the object no longer exists")
        reason = (
            f"no object {key!r}, but {raw.input_key!r} exists: an event's key is URL-encoded, as S3 "
            "sends it, so its '+' reads as a space; write a '+' in a key as %2B"
        )
        log.warning("ignored s3://%s/%s: %s", event.bucket, event.key, reason)
        return {"status": RunStatus.IGNORED, "key": event.key, "reason": reason}

    def delegate(self, run: RunInput, s3_key: str) -> Mapping[str, Any]:
        """Start the Distributed Map run, named by the run id so a re-delivery starts nothing.

        Step Functions keeps a closed execution's name for 90 days: an execution of this run
        that ended without a summary (stopped, timed out, RecordFailure failed) would else hold
        the input unscored for good, so a closed one is followed by `<run id>-<n>`."""
        import boto3

        client = boto3.client("stepfunctions")
        shards = max(1, math.ceil(run.info.size / self.settings.shard_bytes))
        payload = {"bucket": run.bucket, "key": s3_key, "etag": run.info.etag, "shards": shards}
        answer = {
            "status": RunStatus.DELEGATED,
            "run_id": run.run_id,
            "input": run.obj.input_key,
            "shards": shards,
        }
        for attempt in range(1, _ATTEMPTS + 1):
            name = run.run_id if attempt == 1 else f"{run.run_id}-{attempt}"
            try:
                client.start_execution(
                    stateMachineArn=self.settings.state_machine,
                    name=name,
                    input=json.dumps(payload),
                )
                return {**answer, "execution": name}
            except client.exceptions.ExecutionAlreadyExists:
                arn = _execution_arn(self.settings.state_machine, name)
                status = client.describe_execution(executionArn=arn)["status"]
            if status == "RUNNING":
                log.info("run %s is already in the state machine as %s", run.run_id, name)
                return {**answer, "execution": name}
            if finished_summary(self.store, run):  # it finished since on_object looked
                log.info("run %s finished in execution %s", run.run_id, name)
                return {**answer, "execution": name}
            log.warning(
                "execution %s of run %s ended %s without a summary; starting it again",
                name,
                run.run_id,
                status,
            )
        raise RuntimeError(
            f"run {run.run_id} of {run.obj.input_key} ended without a summary in {_ATTEMPTS} "
            "executions; see the state machine's executions for why"
        )

    # ---- the state machine's tasks ----------------------------------------------------------

    def _input_of(self, task: Mapping[str, Any]) -> tuple[RunInput, str]:
        """The input an execution input {bucket, key, etag, shards} names, as it is now, and
        the ETag the execution was started for."""
        event = ObjectCreated(str(task["bucket"]), str(task["key"]), str(task.get("etag", "")), 0)
        key = store_key(self.store, event)
        obj = parse_input_key(key) if key is not None else None
        if obj is None:
            raise BadRequest(f"{task['key']!r} is not a batch input key in this store")
        info = self.store.head(obj.input_key)
        return RunInput(obj, event.bucket, info), event.etag.strip('"') or info.etag

    def plan(self, task: dict[str, Any]) -> Mapping[str, Any]:
        """Plan a sharded run from the execution input {bucket, key, etag, shards}."""
        run, _ = self._input_of(task)
        plan = plan_run(self.store, self.pool, run, int(task["shards"]), self.settings)
        if "plan_key" not in plan:
            return plan  # finished before, or the input is unreadable: its summary
        bucket, prefix = store_location(self.store)  # where the Distributed Map reads the items
        return {**plan, "plan_object": {"Bucket": bucket, "Key": prefix + plan["plan_key"]}}

    def shard(self, item: dict[str, Any]) -> Mapping[str, Any]:
        return score_shard(self.store, self.pool, item, self.settings)

    def merge(self, plan: dict[str, Any]) -> Mapping[str, Any]:
        return merge_run(self.store, plan, self.settings.max_line_bytes)

    def fail(self, task: dict[str, Any]) -> Mapping[str, Any]:
        """Record why a sharded run failed (the state machine's Catch hands over its error)."""
        plan, error = task["plan"], task.get("error") or {}
        reason = task_error(error)  # the function's error, not its JSON and stack trace
        when = ""
        if "input" not in plan:  # Plan itself failed: its Catch hands over the execution input
            plan, when = self._unplanned(plan), " while planning"
        run_from(self.store, plan)  # validates the plan before anything is written
        reason = f"sharded run failed{when}: {reason}"[:2000]
        return fail_run(self.store, plan, reason, self.settings.chunk_rows)

    def _unplanned(self, task: Mapping[str, Any]) -> dict[str, Any]:
        """What `fail_run` needs of a plan, for the version the execution was started for (a
        newer version's own run is not touched: the failure is then not published)."""
        now, etag = self._input_of(task)
        run = RunInput(now.obj, now.bucket, ObjectInfo(now.obj.input_key, now.info.size, etag))
        return {
            "input": run.obj.input_key,
            "bucket": run.bucket,
            "etag": etag,
            "size": run.info.size,
            "started_at": utc_now(),
            "work": run.obj.work_prefix(run.run_id),  # a plan.json written before it failed
        }


_ATTEMPTS = 20  # executions of one run before the message is left to SQS's redrive


def _execution_arn(machine: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>."""
    head, _, machine_name = machine.rpartition(":stateMachine:")
    return f"{head}:execution:{machine_name}:{name}"


def _ignored(event: ObjectCreated, reason: str) -> Mapping[str, Any]:
    log.info("ignored s3://%s/%s: %s", event.bucket, event.key, reason)
    return {"status": RunStatus.IGNORED, "key": event.key, "reason": reason}


def _owns_output(store: ObjectStore, obj: BatchObject) -> bool:
    """Whether the output key `obj`'s name maps to is its own to clear, as `open_run` decides:
    not another input's report (`rows.csv.summary.json`, `rows.csv.errors.jsonl` score into
    rows.csv's) nor a twin's output. A dead-lettered failure deleted rows.csv's summary or
    rejected rows when such a name failed for another reason (review_rev3 2)."""
    try:
        _ = obj.format
        check_sole_writer(store, obj)
    except (OutputShared, UnsupportedFormat):
        return False
    return True
