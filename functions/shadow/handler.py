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

from functions.shadow.replay import Replayer

REPLAYER = Replayer.from_env(os.environ)


def log_messages(event: dict[str, Any]) -> list[str]:
    """The log lines a CloudWatch Logs subscription event carries (none for a control message)."""
    data = orjson.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    if data.get("messageType") != "DATA_MESSAGE":  # CONTROL_MESSAGE: CloudWatch's own check
        return []
    return [str(item["message"]) for item in data.get("logEvents", [])]


def handler(event: dict[str, Any], context: object = None) -> dict[str, int]:
    """A CloudWatch Logs subscription event -> the copies it held, replayed."""
    messages = log_messages(event)
    results = [REPLAYER.replay_line(message) for message in messages]
    done = [r for r in results if r is not None]
    return {
        "copies": len(messages),
        "replayed": sum(1 for r in done if r[2] is not None),
        "failed": sum(1 for r in done if r[2] is None),
        "not_copies": len(messages) - len(done),
    }
