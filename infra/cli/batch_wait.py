"""`aiaas batch --deployed --wait`: poll the store for the run's summary, and meanwhile say what
the store shows of the run. The stack writes no record of a run scored in one invocation until
its summary; a sharded run (the state machine's Distributed Map) writes its plan, then a part
per shard scored, with its rows, so the wait can count them.
"""

from __future__ import annotations

import json
import re
import time

from functions.runtime.batch.records import RunSummary
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.stalls import STOPS, Queues, Stall, stall
from functions.runtime.batch.status import FINISHED, RunStatus
from functions.runtime.batch.work import PLAN_FILE
from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.store import ObjectStore
from infra.cli.row_progress import Waiting

POLL_SECONDS = 2.0
PART = re.compile(r"/part-\d+\.json$")


def pause(seconds: float) -> None:
    """Between two polls (a test steps the stack here instead)."""
    time.sleep(seconds)


class RunWatch:
    """What the store shows of one run, read again at each poll; parts once each."""

    def __init__(self, store: ObjectStore, run: RunInput) -> None:
        self.store, self.run = store, run
        self.work = run.obj.work_prefix(run.run_id)
        self.shards: int | None = None
        self.parts: dict[str, int] = {}  # part key -> its rows
        self.queues = Queues()  # asked only past 7.5 h with no record of the run
        self.held: Stall | None = None  # what the queues said last, for the timeout's error
        # A dead-lettered failure of these very bytes there as the wait begins is the earlier
        # message's (S3: same bytes, same ETag, same run id), not this upload's: it is what
        # docs/batch.md says to upload again after, and the wait reported it at once, exit 1,
        # while the stack scored the upload (review_rev3 3).
        self._earlier = self._summary()
        if self._earlier is not None and not self._earlier.get("dead_lettered"):
            self._earlier = None

    def _summary(self) -> RunSummary | None:
        try:
            found: RunSummary = json.loads(self.store.get_bytes(self.run.obj.summary_key))
        except (NotFound, ValueError):
            return None
        return found

    def _check_stalled(self) -> str | None:
        """The state to show past the time its message can be in flight, the queues asked
        (the caller's AIAAS_BATCH_QUEUE_URL / AIAAS_BATCH_DLQ_URL); raise, saying where its
        message is, once no run is coming: its message dead-lettered, or its event never
        arrived (hunt_batch2). A backlog in the batch queue, or queues it cannot read, is
        waited on: it may be scored yet (review_rev4 3)."""
        if not self.store.location.notifies:  # no queue: `_deployed` said what scores it
            return None
        self.held = stall(self.run.info.modified, self.queues)
        if self.held is None:
            return None
        if self.held.held in STOPS and not self._recorded():  # read again after the queues
            raise AiaasError(f"run {self.run.run_id} is stalled: {self.held.hint}")
        return self.held.state()

    def _recorded(self) -> bool:
        summary = self._summary()
        if summary is not None and summary != self._earlier:  # publishing, or finished
            return summary.get("run_id") == self.run.run_id or self._plan()
        return self._plan()

    def _plan(self) -> bool:
        return self.store.exists(f"{self.work}/{PLAN_FILE}")

    def poll(self) -> tuple[RunSummary | None, str]:
        """(the finished summary, or None; the state to show)."""
        summary = self._summary()
        if summary is not None and summary == self._earlier:
            summary = None  # the earlier message's failure: this upload's run comes
        if summary is not None and summary.get("run_id") == self.run.run_id:
            status = summary.get("status")
            if status in FINISHED:
                return summary, str(status)
            if status == RunStatus.PUBLISHING:
                return None, "publishing its output"
        if self.shards is None:
            try:
                self.shards = len(json.loads(self.store.get_bytes(f"{self.work}/{PLAN_FILE}")))
            except (NotFound, ValueError):
                held = self._check_stalled()
                return None, held or "pending (no record of its run in the store yet)"
        for key in self.store.list_keys(self.work):
            if PART.search(key) and key not in self.parts:
                try:
                    part = json.loads(self.store.get_bytes(key))
                except (NotFound, ValueError):
                    continue  # removed meanwhile: the run is ending
                if part.get("run_id") == self.run.run_id:
                    self.parts[key] = int(part.get("rows", 0))
        rows = sum(self.parts.values())
        return None, f"{len(self.parts)} of {self.shards} parts scored ({rows:,} rows)"


def wait_for_summary(
    store: ObjectStore, run: RunInput, timeout: float, *, show: bool = True
) -> RunSummary:
    """The run's finished summary, polled for up to `timeout` s; with `show`, a line on stderr
    says what is known meanwhile (the state, parts and rows scored, the time waited)."""
    watch = RunWatch(store, run)
    deadline = time.monotonic() + timeout
    what = f"{run.obj.model} batch {run.obj.input_key.rsplit('/', 1)[-1]} on the stack"
    with Waiting(what, show=show) as shown:
        while True:
            summary, state = watch.poll()
            if summary is not None:
                return summary
            shown(state)
            if time.monotonic() >= deadline:
                break
            pause(POLL_SECONDS)
    if watch.held is not None:
        raise AiaasError(
            f"no summary for run {run.run_id} after {timeout:.0f} s: {watch.held.hint}"
        )
    raise AiaasError(
        f"no summary for run {run.run_id} after {timeout:.0f} s (last seen: {state}); is the stack "
        "deployed with this bucket, and its queue's dead-letter queue empty?"
    )
