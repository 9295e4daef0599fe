"""Lambda entry point of the ShadowFunction (`functions.shadow.handler.handler`).

The predict functions print each sampled shadow copy to stdout (functions/predict/shadow.py);
a CloudWatch Logs subscription filter on each predict function's log group (`{ $.aiaas_shadow
= 1 }`, template.yaml) delivers those lines here, gzipped and base64-encoded, in batches. Each
copy is replayed to its shadow version and compared (functions/shadow/replay.py), and the
result written as EMF, under the same metric names and labels the predict function used to.
The registry is read only; loaded versions stay warm between invocations.
"""

from __future__ import annotations

import base64
import gzip
import os
from typing import Any

import orjson

from functions.runtime.errors import BadRequest
from functions.shadow.replay import Replayer

REPLAYER = Replayer.from_env(os.environ)


def log_messages(event: dict[str, Any]) -> list[str]:
    """The log lines a CloudWatch Logs subscription event carries (none for a control message);
    BadRequest naming what the event is not (was a bare KeyError 'awslogs', or zlib's error)."""
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
        return [str(item["message"]) for item in data.get("logEvents", [])]
    except (ValueError, OSError, EOFError, KeyError, TypeError, AttributeError) as exc:
        raise BadRequest(
            f"awslogs.data is not base64 of gzipped JSON log events, as CloudWatch Logs sends "
            f"them ({type(exc).__name__}: {exc})"
        ) from None


def handler(event: dict[str, Any], context: object = None) -> dict[str, int]:
    """A CloudWatch Logs subscription event -> the copies it held, replayed."""
    messages = log_messages(event)
    results = [REPLAYER.replay_line(message) for message in messages]
    done = [r for r in results if r is not None]
    return {
        "copies": len(done),  # the lines that are copies (every log line, before)
        "replayed": sum(1 for r in done if r[2] is not None),
        "failed": sum(1 for r in done if r[2] is None),
        "not_copies": len(messages) - len(done),
    }
