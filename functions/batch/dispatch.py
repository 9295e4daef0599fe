"""Routing a batch event to a `BatchService`: an SQS batch whose bodies are S3 notifications
or EventBridge events (answered with `batchItemFailures`), a direct S3 notification or S3
EventBridge event (a rule that targets the function), S3's test event, or a Step Functions task
`{"aiaas_batch": ...}`.

No work at import: the Lambda entry point (functions/batch/handler.py) builds its service from
the environment at init, and `aiaas batch` hands this its own service, built from its flags.
Importing the entry point from the CLI read the environment's batch settings at import, so a
bad `AIAAS_BATCH_CHUNK_ROWS` failed `aiaas batch --chunk-rows 2` in a fresh process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from functions.batch.events import (
    MalformedEvent,
    ObjectCreated,
    eventbridge_records,
    is_test_event,
    s3_records,
    sqs_body_records,
)
from functions.batch.service import BatchService
from functions.runtime.batch.stalls import MAX_RECEIVES  # the last before the dead letters
from functions.runtime.batch.status import BatchTask

PROCESSOR = BatchProcessor(event_type=EventType.SQS)
log = logging.getLogger("aiaas.batch")

Event = dict[str, Any]


def _record_source(event: Event) -> str | None:
    records = event.get("Records")
    if isinstance(records, list) and records and isinstance(records[0], dict):
        return str(records[0].get("eventSource", ""))
    return None


def sqs_record(service: BatchService, record: SQSRecord) -> list[Mapping[str, Any]]:
    """One message: every object it announces is scored, or the message fails as a whole."""
    announced: list[ObjectCreated] = []
    began = time.perf_counter()
    try:
        announced = sqs_body_records(record.body)
        return [service.on_object(created) for created in announced]
    except Exception as exc:
        # `batchItemFailures` carries message ids only: the reason goes to the log, one line
        # per failed message, so CloudWatch and `aiaas invoke` say why it will come back.
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        receives = _receives(record)
        if receives < MAX_RECEIVES:
            log.error(
                "SQS message %s failed and returns to the queue: %s", record.message_id, reason
            )
            raise
        log.error(
            "SQS message %s failed on its delivery %d of %d and goes to the dead-letter queue: %s",
            record.message_id,
            receives,
            MAX_RECEIVES,
            reason,
        )
        # Else no summary ever said so: the job API read `pending` for good.
        for created in announced:
            service.dead_lettered(created, reason, receives, time.perf_counter() - began)
        raise


def _receives(record: SQSRecord) -> int:
    """How many times the queue has delivered this message, this delivery included."""
    try:
        return int(record.attributes.approximate_receive_count)
    except (KeyError, TypeError, ValueError):  # a hand-made event without it: the first
        return 1


def on_sqs(service: BatchService, event: Event, context: object) -> dict[str, Any]:
    response = process_partial_response(
        event=event,
        record_handler=partial(sqs_record, service),
        processor=PROCESSOR,
        context=context,  # type: ignore[arg-type]
    )
    return dict(response)


def on_s3(service: BatchService, event: Event, context: object) -> dict[str, Any]:
    return {"results": [service.on_object(created) for created in s3_records(event)]}


def on_eventbridge(service: BatchService, event: Event, context: object) -> dict[str, Any]:
    """An EventBridge event from a rule that targets the function itself (not the queue)."""
    return {"results": [service.on_object(created) for created in eventbridge_records(event)]}


def on_test_event(service: BatchService, event: Event, context: object) -> dict[str, Any]:
    """S3's `s3:TestEvent`, sent when a notification is set up: nothing to score."""
    return {"results": []}


TASKS = tuple(BatchTask)


def on_task(service: BatchService, event: Event, context: object) -> dict[str, Any]:
    action = event["aiaas_batch"]
    if action not in TASKS:
        raise MalformedEvent(
            f"unknown batch task {action!r}; expected one of {[t.value for t in TASKS]}"
        )
    task: Callable[[Event], Mapping[str, Any]] = getattr(service, action)
    return dict(task(event))


Route = tuple[Callable[[Event], bool], Callable[[BatchService, Event, object], dict[str, Any]]]
ROUTES: list[Route] = [
    (lambda e: _record_source(e) == "aws:sqs", on_sqs),
    (lambda e: _record_source(e) == "aws:s3", on_s3),
    (lambda e: "aiaas_batch" in e, on_task),
    (lambda e: "detail-type" in e and "source" in e, on_eventbridge),
    (is_test_event, on_test_event),
]


def dispatch(service: BatchService, event: Event, context: object = None) -> dict[str, Any]:
    """Route one event to `service` (the CLI calls this with its own store)."""
    if isinstance(event, dict):
        for recognises, handle in ROUTES:
            if recognises(event):
                return handle(service, event, context)
    raise MalformedEvent(
        "unrecognised event: expected SQS messages with S3 notifications or EventBridge "
        "events, an S3 notification, an S3 EventBridge event or a Step Functions task "
        '{"aiaas_batch": ...}'
    )
