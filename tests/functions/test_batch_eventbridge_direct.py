"""The batch function given an S3 EventBridge event itself (a rule whose target is the function,
not the queue: events/batch_eventbridge.json, the body of events/batch_eventbridge_sqs.json) and
S3's `s3:TestEvent`: both were "unrecognised event" errors, so Lambda's asynchronous retries
failed twice more and the upload was never scored. Through `handler` configured as in Lambda,
over S3 on moto's server."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from functions.batch.events import MalformedEvent
from functions.runtime.s3store import S3Store, make_s3_client
from tests.batch_support import features_csv, publish_classifier

EVENTS = Path(__file__).resolve().parents[2] / "events"
NAME = "scores for März.csv"  # the golden event's key, URL-encoded there


def golden() -> dict[str, Any]:
    return json.loads((EVENTS / "batch_eventbridge.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def lambda_handler(
    moto_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The golden event's bucket with digits-mlp and its input; the handler as Lambda builds it."""
    bucket = golden()["detail"]["bucket"]["name"]
    client = make_s3_client()
    if bucket in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        emptied(bucket)  # test_batch_handler.py's golden-event test uses it too
    else:
        client.create_bucket(Bucket=bucket)
    store = S3Store(bucket, "registry")
    publish_classifier(store, tmp_path, name="digits-mlp")
    store.put_bytes(f"batch/digits-mlp/input/{NAME}", features_csv(np.ones((4, 4))).encode())
    monkeypatch.setenv("AIAAS_STORE", f"s3://{bucket}/registry")
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "lambda-cache"))
    module: ModuleType = importlib.reload(importlib.import_module("functions.batch.handler"))
    yield module.handler, store
    emptied(bucket)


def emptied(bucket: str) -> None:
    client = make_s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])


def test_the_golden_event_is_the_queue_message_s_body() -> None:
    sqs = json.loads((EVENTS / "batch_eventbridge_sqs.json").read_text())
    assert golden() == json.loads(sqs["Records"][0]["body"])


def test_an_eventbridge_event_given_to_the_function_is_scored_once(lambda_handler: Any) -> None:
    handler, store = lambda_handler
    (result,) = handler(golden(), None)["results"]
    assert (result["status"], result["rows"]) == ("succeeded", 4)
    summary = json.loads(store.get_bytes(f"batch/digits-mlp/output/{NAME}.summary.json"))
    assert (summary["status"], summary["run_id"]) == ("succeeded", result["run_id"])
    (again,) = handler(golden(), None)["results"]  # EventBridge delivers at least once
    assert (again["status"], again["run_id"]) == ("skipped", result["run_id"])
    deleted = {**golden(), "detail-type": "Object Deleted"}
    assert handler(deleted, None) == {"results": []}


def test_s3_s_test_event_and_strangers(lambda_handler: Any) -> None:
    handler, _ = lambda_handler
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-11-23T12:00:00.000Z",
        "Bucket": golden()["detail"]["bucket"]["name"],
        "RequestId": "C3D13FE58DE4C810",
        "HostId": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
    }
    assert handler(test_event, None) == {"results": []}
    schedule = json.loads((EVENTS / "drift_schedule.json").read_text())
    with pytest.raises(MalformedEvent, match=r"EventBridge event from 'aws\.events', not aws\.s3"):
        handler(schedule, None)
