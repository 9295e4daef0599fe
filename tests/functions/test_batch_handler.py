"""The batch function on S3 (moto's server on loopback): SQS and S3 events, re-delivery, failures."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.batch.events import (
    MalformedEvent,
    ObjectCreated,
    s3_notification,
    s3_records,
    sqs_body_records,
    sqs_event,
)
from functions.batch.handler import dispatch
from functions.runtime.s3store import S3Store, make_s3_client
from tests.batch_support import (
    features_csv,
    notification_body,
    publish_classifier,
    published_store,
    read_csv,
    reference_logits,
    service,
    sqs_for,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
OUT = "batch/iris/output"


def created(record: dict) -> ObjectCreated:
    return s3_records({"Records": [record]})[0]


@pytest.fixture
def s3(s3_store: S3Store, tmp_path: Path) -> S3Store:
    publish_classifier(s3_store, tmp_path)
    return s3_store


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(11).normal(size=(9, 4))


@pytest.mark.parametrize("name", ["plain.csv", "with spaces + plus.csv", "Größe 数据 é.csv"])
def test_sqs_event_scores_the_object_into_s3(s3, tmp_path, x, name):
    key = f"batch/iris/input/{name}"
    s3.put_bytes(key, features_csv(x).encode())
    event = sqs_for(s3, key)
    raw_key = json.loads(event["Records"][0]["body"])["Records"][0]["s3"]["object"]["key"]
    assert " " not in raw_key and raw_key.isascii()  # S3 URL-encodes keys in notifications
    assert dispatch(service(s3, tmp_path), event) == {"batchItemFailures": []}
    rows = read_csv(s3, f"{OUT}/{name}")
    logits = np.array([[float(r[f"pred_logits_{i}"]) for i in range(3)] for r in rows], np.float32)
    np.testing.assert_array_equal(logits, reference_logits(tmp_path, x))
    summary = json.loads(s3.get_bytes(f"{OUT}/{name}.summary.json"))
    assert (summary["status"], summary["input"], summary["bucket"]) == ("succeeded", key, s3.bucket)
    assert summary["etag"] == s3.head(key).etag
    stored = make_s3_client().head_object(Bucket=s3.bucket, Key=f"registry/{OUT}/{name}")
    assert stored["ContentLength"] == len(s3.get_bytes(f"{OUT}/{name}"))


def test_redelivery_is_recognised_and_rewrites_nothing(s3, tmp_path, x):
    key = "batch/iris/input/again.csv"
    s3.put_bytes(key, features_csv(x).encode())
    batch = service(s3, tmp_path)
    event = sqs_for(s3, key)
    dispatch(batch, event)
    keys = [f"{OUT}/again.csv", f"{OUT}/again.csv.errors.jsonl", f"{OUT}/again.csv.summary.json"]
    before = {k: s3.head(k).etag for k in keys}
    summary = json.loads(s3.get_bytes(keys[2]))
    duplicate = json.loads(event["Records"][0]["body"])["Records"][0]
    assert batch.on_object(created(duplicate))["status"] == "skipped"
    assert dispatch(batch, event) == {"batchItemFailures": []}
    assert {k: s3.head(k).etag for k in keys} == before
    # A new version of the object (new ETag) is a new run.
    s3.put_bytes(key, features_csv(x[:4]).encode())
    dispatch(batch, sqs_for(s3, key))
    newer = json.loads(s3.get_bytes(keys[2]))
    assert newer["run_id"] != summary["run_id"] and newer["rows"] == 4
    assert len(read_csv(s3, keys[0])) == 4


def test_partial_failure_returns_only_the_failed_messages(s3, tmp_path, x):
    s3.put_bytes("batch/iris/input/good.csv", features_csv(x).encode())
    s3.put_bytes("batch/iris/input/header.csv", b"a,b\n1,2\n")
    wrong_bucket = json.dumps(
        s3_notification("someone-elses-bucket", "registry/batch/iris/input/good.csv", "e", 1)
    )
    bodies = [
        notification_body(s3, "batch/iris/input/good.csv"),
        "this is not JSON",
        wrong_bucket,
        notification_body(s3, "batch/iris/input/header.csv"),  # fails as an object, not a message
        json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3", "Bucket": s3.bucket}),
    ]
    event = sqs_event(bodies)
    ids = [record["messageId"] for record in event["Records"]]
    response = dispatch(service(s3, tmp_path), event)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[2]}]
    }
    assert json.loads(s3.get_bytes(f"{OUT}/good.csv.summary.json"))["status"] == "succeeded"
    failed = json.loads(s3.get_bytes(f"{OUT}/header.csv.summary.json"))
    assert failed["status"] == "failed"
    assert failed["error"].startswith("batch/iris/input/header.csv: the header lacks column(s) x_0")


def test_a_batch_where_every_message_fails_is_retried_whole(s3, tmp_path):
    with pytest.raises(BatchProcessingError, match="All records failed"):
        dispatch(service(s3, tmp_path), sqs_event(["{}", "[1"]))


def test_keys_that_are_not_inputs_are_ignored(s3, tmp_path, x):
    s3.put_bytes(f"{OUT}/old.csv", b"x")  # our own outputs also notify the queue
    s3.put_bytes("batch/Bad Name/input/a.csv", b"x")
    s3.put_bytes("elsewhere/a.csv", b"x")
    batch = service(s3, tmp_path)
    for store_key, reason in [
        (f"{OUT}/old.csv", "not under batch/<model>/input/"),
        ("batch/Bad Name/input/a.csv", "invalid model name 'Bad Name'"),
    ]:
        record = json.loads(notification_body(s3, store_key))["Records"][0]
        result = batch.on_object(created(record))
        assert result["status"] == "ignored" and result["reason"].startswith(reason)
    # Outside the store's prefix (a rule or AIAAS_STORE without it): it was "not under
    # batch/<model>/input/" at INFO, for a key that is, and every input was lost unsaid.
    for key in ("elsewhere/a.csv", "batch/iris/input/a.csv"):
        outside = s3_notification(s3.bucket, key, "e", 1)["Records"][0]
        assert batch.on_object(created(outside))["reason"].startswith(
            "outside this function's store, which is under 'registry/' in the bucket"
        )
    # The S3 console's "Create folder" under input/: was "not under batch/<model>/input/".
    marker = s3_notification(s3.bucket, "registry/batch/iris/input/day2/", "e", 0)["Records"][0]
    assert batch.on_object(created(marker))["reason"] == (
        "a folder marker (its key ends in '/'): nothing to score"
    )
    gone = s3_notification(s3.bucket, "registry/batch/iris/input/gone.csv", "e", 1)["Records"][0]
    assert batch.on_object(created(gone))["reason"] == "the object no longer exists"


def test_direct_s3_event(s3, tmp_path, x):
    s3.put_bytes("batch/iris/input/direct.csv", features_csv(x).encode())
    event = json.loads(notification_body(s3, "batch/iris/input/direct.csv"))
    result = dispatch(service(s3, tmp_path), event)
    assert [r["status"] for r in result["results"]] == ["succeeded"]
    assert len(read_csv(s3, f"{OUT}/direct.csv")) == 9


def test_unrecognised_events_are_refused(s3, tmp_path):
    batch = service(s3, tmp_path)
    with pytest.raises(Exception, match="unrecognised event: expected SQS messages"):
        dispatch(batch, {"hello": "world"})
    with pytest.raises(Exception, match="unknown batch task 'explode'"):
        dispatch(batch, {"aiaas_batch": "explode"})


def test_golden_events_drive_the_deployed_handler(moto_server, tmp_path, monkeypatch):
    """events/batch_*.json through `handler` itself, configured by environment as in Lambda."""
    sqs = json.loads((EVENTS / "batch_sqs.json").read_text())
    direct = json.loads((EVENTS / "batch_s3.json").read_text())
    bucket = direct["Records"][0]["s3"]["bucket"]["name"]
    make_s3_client().create_bucket(Bucket=bucket)
    store = S3Store(bucket, "registry")
    publish_classifier(store, tmp_path, name="digits-mlp")
    key = "batch/digits-mlp/input/scores for März.csv"
    store.put_bytes(key, features_csv(np.ones((3, 4))).encode())
    monkeypatch.setenv("AIAAS_STORE", f"s3://{bucket}/registry")
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "lambda-cache"))
    module = importlib.reload(importlib.import_module("functions.batch.handler"))
    assert module.handler(sqs, None) == {"batchItemFailures": []}  # test event included
    assert (
        json.loads(store.get_bytes("batch/digits-mlp/output/scores for März.csv.summary.json"))[
            "rows"
        ]
        == 3
    )
    assert module.handler(direct, None)["results"][0]["status"] == "skipped"


def test_the_golden_eventbridge_message_drives_the_deployed_handler(
    moto_server, tmp_path, monkeypatch
):
    """What the stack's queue delivers in AWS: EventBridge "Object Created" events in SQS bodies
    (events/batch_eventbridge_sqs.json), through `handler` configured as in Lambda."""
    sqs = json.loads((EVENTS / "batch_eventbridge_sqs.json").read_text())
    bucket = json.loads(sqs["Records"][0]["body"])["detail"]["bucket"]["name"]
    make_s3_client().create_bucket(Bucket=bucket)
    store = S3Store(bucket, "registry")
    publish_classifier(store, tmp_path, name="digits-mlp")
    store.put_bytes(
        "batch/digits-mlp/input/scores for März.csv", features_csv(np.ones((4, 4))).encode()
    )
    monkeypatch.setenv("AIAAS_STORE", f"s3://{bucket}/registry")
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "lambda-cache"))
    module = importlib.reload(importlib.import_module("functions.batch.handler"))
    assert module.handler(sqs, None) == {"batchItemFailures": []}
    summary = store.get_bytes("batch/digits-mlp/output/scores for März.csv.summary.json")
    assert json.loads(summary)["rows"] == 4


def eventbridge_body(**changes: object) -> str:
    body = json.loads(
        json.loads((EVENTS / "batch_eventbridge_sqs.json").read_text())["Records"][0]["body"]
    )
    body.update(changes)
    return json.dumps(body)


def test_eventbridge_bodies_are_read_and_strangers_refused() -> None:
    (created,) = sqs_body_records(eventbridge_body())
    assert created.key == "registry/batch/digits-mlp/input/scores for März.csv"  # decoded
    assert (created.etag, created.size) == ("9b2cf535f27731c974343645a3985328", 1831)
    assert sqs_body_records(eventbridge_body(**{"detail-type": "Object Deleted"})) == []
    with pytest.raises(MalformedEvent, match=r"EventBridge event from 'aws\.ec2', not aws\.s3"):
        sqs_body_records(eventbridge_body(source="aws.ec2"))
    with pytest.raises(MalformedEvent, match="not a complete S3 EventBridge event"):
        sqs_body_records(eventbridge_body(detail={"bucket": {"name": "b"}}))


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("batch/iris/input/ok\x00.csv", "'batch/iris/input/ok\\x00.csv'"),
        (f"batch/iris/input/{'a' * 300}.csv", "'batch/iris/input/" + "a" * 43 + "'... (321"),
    ],
)
def test_an_input_key_no_file_can_have_is_ignored_saying_why(
    tmp_path: Path, key: str, shown: str
) -> None:
    """S3 takes a NUL or a 300-character name in a key: on the directory store the event was
    a ValueError out of the handler (over SQS: retried until the dead-letter queue)."""
    store = published_store(tmp_path)
    record = s3_notification("aiaas-local", key, "e", 1)["Records"][0]
    result = service(store, tmp_path).on_object(created(record))
    assert result["status"] == "ignored"
    assert result["reason"].startswith(f"invalid batch input key {shown}")
    assert list(store.list_keys("batch/iris/output")) == []
