"""Lambda entry point of the ShadowFunction (`functions.shadow.handler.handler`).

The predict functions print each sampled shadow copy to stdout (functions/predict/shadow.py);
a CloudWatch Logs subscription filter on each predict function's log group (`{ $.aiaas_shadow
= 1 }`, template.yaml) delivers those lines here, gzipped and base64-encoded, in batches. Each
copy is replayed to its shadow version and compared (functions/shadow/replay.py), and the
result written as EMF, under the same metric names and labels the predict function used to.
The registry is read only; loaded versions stay warm between invocations.

Delivery is at least once, and an invocation that fails is retried whole (asynchronous
invoke: twice more). Each copy would then be counted again, so: a log event already replayed
by this execution environment (its CloudWatch event id) is skipped, and the replay stops before
the function's Timeout, counting the copies it leaves as dropped (`aiaas_shadow_dropped_total`)
rather than timing out, which resets the environment (and what it had seen) and brings the
retry that replays the batch's first copies again.
"""

from __future__ import annotations

import base64
import gzip
import os
import time
from collections import deque
from typing import Any

import orjson

from functions.predict.shadow_copy import BadCopy, decode
from functions.predict.telemetry import logger
from functions.runtime.download_deadline import within
from functions.runtime.errors import BadRequest
from functions.shadow.replay import Replayer

REPLAYER = Replayer.from_env(os.environ)
RESERVE_S = 5.0  # time kept back from the Timeout for the answer and the EMF it flushes
SEEN_EVENTS = 100_000  # CloudWatch event ids remembered (~60 bytes each)


class SeenEvents:
    """The ids of the log events replayed lately, oldest forgotten first."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        if event_id in self._ids:
            return
        if len(self._order) >= self._size:
            self._ids.discard(self._order.popleft())
        self._order.append(event_id)
        self._ids.add(event_id)


SEEN = SeenEvents()


def log_events(event: dict[str, Any]) -> list[tuple[str, str]]:
    """The (id, message) of each log line a CloudWatch Logs subscription event carries (none for
    a control message); BadRequest naming what the event is not (was a bare KeyError 'awslogs',
    or zlib's error)."""
    try:
        packed = event["awslogs"]["data"]
    except (KeyError, TypeError):
        raise BadRequest(
            "not a CloudWatch Logs subscription event (no awslogs.data): the ShadowFunction "
            "reads the copies a predict function's log group sends it (events/shadow_logs.json)"
        ) from None
    try:
        data = orjson.loads(gzip.decompress(base64.b64decode(packed, validate=True)))
        if data.get("messageType") != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch's check
            return []
        return [(str(e.get("id", "")), str(e["message"])) for e in data.get("logEvents", [])]
    except (ValueError, OSError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest(
            f"awslogs.data is not base64 of gzipped JSON log events, as CloudWatch Logs sends "
            f"them ({type(exc).__name__}: {exc})"
        ) from None


def handler(event: dict[str, Any], context: Any = None) -> dict[str, int]:
    """A CloudWatch Logs subscription event -> the copies it held, replayed. A version it loads
    is downloaded by the invocation's time left less a margin (download_deadline.py): a copy
    failed saying so, not a function killed at its Timeout with its counts unsent."""
    with within(context):
        return _replayed(event, context)


def _replayed(event: dict[str, Any], context: Any) -> dict[str, int]:
    deadline = _deadline(context)
    copies = replayed = failed = not_copies = repeated = 0
    late: dict[tuple[str, str, str], int] = {}
    slowest = 0.0
    for event_id, message in log_events(event):
        if event_id and event_id in SEEN:
            repeated += 1
            continue
        try:
            copy = decode(message)
        except BadCopy as exc:
            logger.warning("not replayed: %s", exc)
            not_copies += 1
            continue
        copies += 1
        labels = (copy.model, copy.version, copy.shadow_version)
        if time.monotonic() + slowest > deadline:
            late[labels] = late.get(labels, 0) + 1
            continue
        began = time.monotonic()
        result = REPLAYER.replay(copy)
        slowest = max(slowest, time.monotonic() - began)
        if event_id:
            SEEN.add(event_id)
        if result[2] is None:
            failed += 1
        else:
            replayed += 1
    if late:
        for labels, count in late.items():
            REPLAYER.metrics.shadow_dropped(labels, count)
        REPLAYER.metrics.flush()
        logger.warning(
            "%d shadow copies not replayed: the function's Timeout was near (counted as "
            "aiaas_shadow_dropped_total; raise the ShadowFunction's Timeout or MemorySize)",
            sum(late.values()),
        )
    return {
        "copies": copies,  # the lines that are copies (every log line, before)
        "replayed": replayed,
        "failed": failed,
        "not_copies": not_copies,
        "dropped": sum(late.values()),
        "repeated": repeated,  # log events this environment had replayed already
    }


def _deadline(context: Any) -> float:
    """The monotonic time to stop replaying: RESERVE_S before the invocation's Timeout."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:  # `aiaas invoke` gives its own context; a bare call none
        return float("inf")
    return time.monotonic() + float(remaining()) / 1000 - RESERVE_S
