"""S3 notification shapes: reading them (inside SQS bodies or direct) and building them.

In AWS, the batch queue receives EventBridge "Object Created" events (the stack's rule forwards
only keys under registry/batch/*/input/); S3's own notification shape (`{"Records": [...]}`)
arrives from a direct S3 trigger and from the local paths (`aiaas batch`, the local control
plane). Both are read here. Object keys in either are URL-encoded (a space arrives as '+',
non-ASCII as %XX UTF-8 bytes; Powertools decodes EventBridge keys alike); they are decoded
here, once. Store keys are event keys without the store's
prefix: with `AIAAS_STORE=s3://bucket/registry`, `registry/batch/m/input/a.csv` in an event is
the store key `batch/m/input/a.csv`. A local directory store has no bucket; its events name
the pseudo-bucket `aiaas-local`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import utc_now
from functions.runtime.store import ObjectStore

TEST_EVENT = "s3:TestEvent"
OBJECT_CREATED = "Object Created"  # an EventBridge event's detail-type
REGION = "us-east-1"


class MalformedEvent(BadRequest):
    """An event or message body that is not an S3 notification."""


@dataclass(frozen=True)
class ObjectCreated:
    """One `ObjectCreated:*` record: which object, and the version (ETag) it announces."""

    bucket: str
    key: str  # decoded
    etag: str
    size: int
    sent: str = ""  # the key as the event wrote it, URL-encoded (S3's and EventBridge's shapes)


def store_location(store: ObjectStore) -> tuple[str, str]:
    """(bucket, key prefix) where the store's keys live, as S3 events name them."""
    return store.location.bucket, store.location.key_prefix


def store_key(store: ObjectStore, event: ObjectCreated) -> str | None:
    """The store key for an event's object; None when the object lies outside the store."""
    bucket, prefix = store_location(store)
    if event.bucket != bucket:
        raise MalformedEvent(
            f"event for bucket {event.bucket!r}, but this function's store is in {bucket!r}"
        )
    return event.key[len(prefix) :] if event.key.startswith(prefix) else None


def is_test_event(body: object) -> bool:
    """S3 sends one `s3:TestEvent` message when a notification is configured."""
    return isinstance(body, dict) and body.get("Event") == TEST_EVENT


def s3_records(notification: object) -> list[ObjectCreated]:
    """The ObjectCreated records of an S3 notification; other event types are skipped."""
    if not isinstance(notification, dict) or not isinstance(notification.get("Records"), list):
        raise MalformedEvent('not an S3 notification: expected {"Records": [...]}')
    found = []
    for index, record in enumerate(notification["Records"]):
        try:
            if record.get("eventSource") != "aws:s3":
                raise MalformedEvent(f"Records[{index}] is not an S3 record")
            if not str(record["eventName"]).startswith("ObjectCreated:"):
                continue
            s3 = record["s3"]
            found.append(
                ObjectCreated(
                    bucket=str(s3["bucket"]["name"]),
                    key=unquote_plus(str(s3["object"]["key"])),
                    etag=str(s3["object"].get("eTag", "")),
                    size=int(s3["object"].get("size", 0)),
                    sent=str(s3["object"]["key"]),
                )
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedEvent(f"Records[{index}] is not a complete S3 record: {exc!r}") from None
    return found


def eventbridge_records(event: dict[str, Any]) -> list[ObjectCreated]:
    """The object of an S3 event from EventBridge; none for other detail types."""
    if event.get("source") != "aws.s3":
        raise MalformedEvent(
            f"EventBridge event from {str(event.get('source'))[:80]!r}, not aws.s3"
        )
    if event.get("detail-type") != OBJECT_CREATED:
        return []
    try:
        detail = event["detail"]
        obj = detail["object"]
        created = ObjectCreated(
            bucket=str(detail["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            etag=str(obj.get("etag", "")),
            size=int(obj.get("size", 0)),
            sent=str(obj["key"]),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise MalformedEvent(f"not a complete S3 EventBridge event: {exc!r}") from None
    return [created]


def sqs_body_records(body: str) -> list[ObjectCreated]:
    """The objects announced by one SQS message body: an EventBridge event or an S3
    notification (none for S3's test event)."""
    try:
        notification = json.loads(body)
    except ValueError:
        raise MalformedEvent("SQS message body is not JSON") from None
    if is_test_event(notification):
        return []
    if isinstance(notification, dict) and "detail-type" in notification:
        return eventbridge_records(notification)
    return s3_records(notification)


def s3_notification(bucket: str, key: str, etag: str, size: int) -> dict[str, Any]:
    """The notification S3 sends when `key` is created (key URL-encoded, as S3 does)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": utc_now().replace("Z", ".000Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAAIAASLOCAL"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": uuid.uuid4().hex,
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "aiaas-batch-input",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "AIAASLOCAL"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": size,
                        "eTag": etag.strip('"'),
                        "sequencer": f"{uuid.uuid4().int % 16**16:016X}",
                    },
                },
            }
        ]
    }


def sqs_event(bodies: list[str], queue: str = "aiaas-batch") -> dict[str, Any]:
    """An SQS event for Lambda carrying `bodies` (as the event source mapping delivers it)."""
    records = []
    for body in bodies:
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAAIAASLOCAL",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:000000000000:{queue}",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}
