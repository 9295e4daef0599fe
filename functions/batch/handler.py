"""Lambda entry point of the batch function (`functions.batch.handler.handler`).

Recognises, in order: an SQS batch whose bodies are S3 notifications (the S3 -> SQS path,
answered with `batchItemFailures` so only failed messages come back and, after the queue's
maxReceiveCount, land in the dead-letter queue); a direct S3 notification; a Step Functions
task `{"aiaas_batch": "plan" | "shard" | "merge" | "fail", ...}` from the Distributed Map.
The store and the model pool are built once per container; the routing is
functions/batch/dispatch.py.
"""

from __future__ import annotations

from typing import Any

from functions.batch.dispatch import Event, dispatch
from functions.batch.service import BatchService
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.download_deadline import within
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import open_store

__all__ = ["dispatch", "handler"]  # dispatch: what tests and older callers import from here

SETTINGS = RuntimeSettings.from_env()
STORE = open_store(SETTINGS.store, SETTINGS.s3)
SERVICE = BatchService(
    STORE, ModelPool(Registry(STORE), settings=SETTINGS), BatchSettings.from_env()
)


def handler(event: Event, context: object = None) -> dict[str, Any]:
    """SQS, S3 or Step Functions event -> result (see the module docstring). A model it loads
    is downloaded by the invocation's time left less a margin (download_deadline.py): the run
    fails saying so, not a function killed at its Timeout with nothing written."""
    with within(context):
        return dispatch(SERVICE, event, context)
