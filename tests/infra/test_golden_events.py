"""The golden events (events/) have the shapes AWS sends: every key of each one is a key of the
event `sam local generate-event` writes for its source (HTTP API v2, S3 put, SQS, EventBridge's
scheduled event, a CloudWatch Logs subscription with its gzipped payload decoded), S3 events
nested in SQS bodies included. Free-form maps (headers, parameters, the authorizer's context,
message attributes) hold what a request brings and are not compared. That each one drives its
handler is for tests/infra/test_invoke.py and tests/functions/."""

from __future__ import annotations

import base64
import functools
import gzip
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.cfn_yaml import load_template
from tests.infra.sam_cli import ROOT, SKIP_REASON, Sam, sam_cli

EVENTS = ROOT / "events"
GENERATED = {"http": ("apigateway", "http-api-proxy"), "s3": ("s3", "put"), "sqs": ("sqs", "receive-message"),
             "schedule": ("cloudwatch", "scheduled-event"), "logs": ("cloudwatch", "logs")}  # fmt: skip
FREE_FORM = ("headers", "pathParameters", "queryStringParameters", "stageVariables", "authorizer",
             "messageAttributes", "cookies")  # fmt: skip

# Keys AWS sends that the generated events leave out: S3 names the object's version in a
# versioned bucket (as the artifacts bucket is), per S3's event message structure; every
# EventBridge event carries "version": "0" (EventBridge's event structure reference).
ALSO_SENT = {"s3": {".Records[].s3.object.versionId"}, "schedule": {".version"}}

pytestmark = pytest.mark.skipif(sam_cli() is None, reason=SKIP_REASON)


def logs_payload(event: dict[str, Any]) -> dict[str, Any]:
    """A CloudWatch Logs subscription event with its base64 gzipped `data` decoded."""
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return {"awslogs": {"data": data}}


@functools.cache
def generated(source: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(sam_cli()), "local", "generate-event", *GENERATED[source]],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=Sam().env(),
    )
    event: dict[str, Any] = json.loads(done.stdout)
    return logs_payload(event) if source == "logs" else event


def key_paths(value: Any, path: str = "") -> set[str]:
    """Every key path of a JSON value (list items share one path, `[]`)."""
    if isinstance(value, dict):
        found = set()
        for key, item in value.items():
            found.add(f"{path}.{key}")
            if key not in FREE_FORM:
                found |= key_paths(item, f"{path}.{key}")
        return found
    if isinstance(value, list):
        return set().union(*(key_paths(item, f"{path}[]") for item in value))
    return set()


def source_of(event: dict[str, Any]) -> str | None:
    if event.get("version") == "2.0" and "routeKey" in event:
        return "http"
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if "awslogs" in event:
        return "logs"
    first = (event.get("Records") or [{}])[0]
    return {"aws:s3": "s3", "aws:sqs": "sqs"}.get(first.get("eventSource", ""))


def golden() -> list[Path]:
    return sorted(
        [*EVENTS.glob("*.json"), *EVENTS.glob("local/*.json"), *EVENTS.glob("control/*.json")]
    )


def shaped(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(source, event) of the file, and of the S3 events its SQS bodies carry."""
    event = json.loads(path.read_text())
    source = source_of(event)
    found = [(source, logs_payload(event) if source == "logs" else event)] if source else []
    for record in event.get("Records", []) if source == "sqs" else []:
        body = json.loads(record["body"])
        if source_of(body) == "s3":
            found.append(("s3", body))
    return found


def test_every_golden_event_of_a_known_source_is_compared() -> None:
    compared = {p.name for p in golden() if shaped(p)}
    assert {"predict_simple.json", "batch_s3.json", "batch_sqs.json", "drift_schedule.json",
            "shadow_logs.json"} <= compared  # fmt: skip


def test_every_http_event_carries_the_iam_authorizer_the_template_requires() -> None:
    """The API's default authorizer is AWS_IAM and no route opts out, so API Gateway passes
    each function the signer's identity (`authorizer.iam`); sticky routing and the control
    plane's audit read it. An event without it is a request API Gateway would have refused."""
    auth = load_template(ROOT / "template.yaml")["Resources"]["Api"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    http = [path for path in golden() if [s for s, _ in shaped(path)] == ["http"]]
    assert len(http) >= 10
    for path in http:
        iam = json.loads(path.read_text())["requestContext"].get("authorizer", {}).get("iam")
        assert iam and iam["userArn"].startswith("arn:aws:iam::"), path.name


@pytest.mark.parametrize("path", golden(), ids=lambda p: str(p.relative_to(EVENTS)))
def test_a_golden_event_has_only_keys_aws_sends(path: Path) -> None:
    for source, event in shaped(path):
        unknown = key_paths(event) - key_paths(generated(source)) - ALSO_SENT.get(source, set())
        assert unknown == set(), f"{path.name} ({source}): keys AWS does not send: {unknown}"


def test_the_events_aiaas_batch_fires_locally_have_only_keys_aws_sends() -> None:
    """`aiaas batch` and `aiaas invoke` build their S3 and SQS events here."""
    from functions.batch.events import s3_notification, sqs_event

    notification = s3_notification("aiaas-local", "batch/m/input/a b.csv", '"0f"', 3)
    for source, event in [
        ("s3", notification),
        ("sqs", sqs_event([json.dumps(notification)])),
    ]:
        unknown = key_paths(event) - key_paths(generated(source)) - ALSO_SENT.get(source, set())
        assert unknown == set(), source
