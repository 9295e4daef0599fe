"""Each SQS record of the golden events (and of the events `aiaas batch` fires) carries the MD5
of its body, as SQS computes it: two had bodies edited after their digests were written, so a
consumer that checks `md5OfBody` refused them (the key-shape test cannot see a value)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from functions.batch.events import s3_notification, sqs_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
SQS_EVENTS = sorted(path for path in EVENTS.rglob("*.json") if '"aws:sqs"' in path.read_text())


def test_the_golden_sqs_events_are_found() -> None:
    assert {"batch_sqs.json", "batch_eventbridge_sqs.json"} <= {p.name for p in SQS_EVENTS}


@pytest.mark.parametrize("path", SQS_EVENTS, ids=lambda p: str(p.relative_to(EVENTS)))
def test_each_record_carries_its_body_s_md5(path: Path) -> None:
    for record in json.loads(path.read_text())["Records"]:
        assert record["md5OfBody"] == md5(record["body"])


def test_the_events_aiaas_batch_fires_carry_their_bodies_md5() -> None:
    notification = json.dumps(s3_notification("aiaas-local", "batch/m/input/a.csv", '"0f"', 3))
    for record in sqs_event([notification, notification + " "])["Records"]:
        assert record["md5OfBody"] == md5(record["body"])


def md5(body: str) -> str:
    return hashlib.md5(body.encode(), usedforsecurity=False).hexdigest()
