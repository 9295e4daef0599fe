"""The names a batch run's records and the state machine share: run statuses and task names.

One place for them: the runner, the shard steps, the batch function, the control plane and the
Step Functions definition (`infra/statemachines/batch.asl.json`, checked by a test) all use
these strings.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The `status` of a batch input, as summaries, plans and the control plane report it."""

    PENDING = "pending"  # uploaded; no summary for this version of the input yet
    PLANNED = "planned"  # split into shards; the state machine scores them
    DELEGATED = "delegated"  # handed to the state machine by the batch function
    PUBLISHING = "publishing"  # replacing output and errors: a reader waits
    SUCCEEDED = "succeeded"  # scored (bad rows, if any, are in the errors file)
    FAILED = "failed"  # the input could not be read, or none of its rows scored
    SKIPPED = "skipped"  # a re-delivery of a run already finished
    SUPERSEDED = "superseded"  # the input was replaced mid-run; its new version's run publishes
    IGNORED = "ignored"  # an event for an object that is no batch input
    REFUSED = "refused"  # under input/, but named as no input can be (the job list's)


FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})


class BatchTask(StrEnum):
    """The `aiaas_batch` actions the state machine invokes the batch function with."""

    PLAN = "plan"
    SHARD = "shard"
    MERGE = "merge"
    FAIL = "fail"
