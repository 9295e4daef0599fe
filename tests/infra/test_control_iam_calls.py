"""The ControlPlane role in template.yaml against the AWS calls the control plane really makes:
every route a client may call is run over S3 and Step Functions on moto's server, each boto3 call
is recorded (operation, key, list prefix, state machine), and each must be allowed by the role's
statements as written; and every statement must be used by some route (a grant no code path
needs is privilege to take away). tests/infra/test_template_iam.py reads the policy alone."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from fastapi.testclient import TestClient

from functions.control import rollouts_api
from functions.control.app import create_app
from functions.runtime.batch import stalls
from functions.runtime.batch.stalls import DEAD_LETTER_URL_ENV, QUEUE_URL_ENV
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.template import load_template
from tests.publishing import publish_linear

STACK, REGION, ACCOUNT = "aiaas", "us-east-1", "123456789012"
# Asked of S3 only when a multipart upload fails: no route makes it fail on purpose.
ONLY_ON_FAILURE = {
    ("s3:AbortMultipartUpload", "registry/batch/*/input/*"),
    # a deleted version's manifest put back: only when an alias moves onto it meanwhile
    ("s3:PutObject", "registry/models/*/versions/*/manifest.json"),
    # an alias deleted while its record is corrupt: an older deletion's kept record is dropped
    ("s3:DeleteObject", "registry/models/*/deleted_aliases/*"),
}
# Each S3 operation, as the IAM action it needs on its key (Copy*: and a read of the source).
S3_ACTIONS = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "UploadPartCopy": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}

Call = tuple[str, str]  # (IAM action, S3 key / list prefix / ARN)


def grants(bucket: str) -> list[tuple[str, str, list[str] | None]]:
    """(action, resource, s3:prefix patterns) of each Allow of the ControlPlane role."""
    role = load_template()["Resources"]["ControlPlane"]["Properties"]["Policies"]
    found = []
    for statement in (s for policy in role for s in policy["Statement"]):
        if statement["Effect"] != "Allow":  # the Deny keeping a version's files create-only
            continue
        actions = statement["Action"]
        resources = statement["Resource"]
        prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in resources if isinstance(resources, list) else [resources]:
                text = resource["Fn::Sub"] if isinstance(resource, dict) else resource
                for name, value in {
                    "${AWS::Partition}": "aws",
                    "${AWS::Region}": REGION,
                    "${AWS::AccountId}": ACCOUNT,
                    "${AWS::StackName}": STACK,
                    "${ArtifactsBucket}": bucket,
                }.items():
                    text = text.replace(name, value)
                found.append((action, text, prefixes))
    return found


def allowing(call: Call, bucket: str, found: list[tuple[str, str, list[str] | None]]) -> Any:
    """The grant that allows `call`, else None (IAM's `*` matches '/' too, as fnmatch's)."""
    action, target = call
    for grant in found:
        granted, resource, prefixes = grant
        if granted != action:
            continue
        if action == "s3:ListBucket":
            if resource == f"arn:aws:s3:::{bucket}" and any(
                fnmatch.fnmatchcase(target, p) for p in prefixes or ["*"]
            ):
                return grant
        elif action.startswith("s3:"):
            if fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{target}", resource):
                return grant
        elif fnmatch.fnmatchcase(target, resource):
            return grant
    return None


@pytest.fixture
def recorded(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, list[Call]]]:
    registry = Registry(s3_store)
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1", actor="ci")
    x = np.random.default_rng(3).normal(size=(20, 4))
    rows = "".join(",".join(map(str, r)) + f",{'ab'[i % 2]}\n" for i, r in enumerate(x.tolist()))
    s3_store.put_bytes("batch/m/input/held.csv", f"x_0,x_1,x_2,x_3,y\n{rows}".encode())
    s3_store.put_bytes("uploads/big.csv", f"x_0,x_1,x_2,x_3\n{rows}".encode())
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"{STACK}-rollout",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/rollout",
    )["stateMachineArn"]
    monkeypatch.setattr(rollouts_api, "STATE_MACHINE", machine)
    sqs = boto3.client("sqs")  # the ControlPlane's environment names the stack's two queues
    for variable, queue in [(QUEUE_URL_ENV, "batch-input"), (DEAD_LETTER_URL_ENV, "batch-dlq")]:
        monkeypatch.setenv(variable, sqs.create_queue(QueueName=f"{STACK}-{queue}")["QueueUrl"])
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))  # compare downloads models
    calls: list[Call] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name in ("ListObjectsV2", "ListObjects"):
            calls.append(("s3:ListBucket", params.get("Prefix", "")))
        elif model.name == "StartExecution":
            calls.append(("states:StartExecution", params["stateMachineArn"]))
        elif model.name == "GetQueueAttributes":  # a job pending past 7.5 h: the queues' depths
            name = params["QueueUrl"].rsplit("/", 1)[-1]
            calls.append(("sqs:GetQueueAttributes", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
        elif model.name == "DeleteObjects":  # IAM asks s3:DeleteObject of each key
            calls.extend(("s3:DeleteObject", o["Key"]) for o in params["Delete"]["Objects"])
        elif model.name in S3_ACTIONS:
            calls.append((S3_ACTIONS[model.name], params["Key"]))
            source = params.get("CopySource")
            if isinstance(source, dict):
                calls.append(("s3:GetObject", source["Key"]))

    s3_store.client.meta.events.register("before-parameter-build", record)
    session = boto3.Session()  # the rollout route's `boto3.client("stepfunctions")`
    session.events.register("before-parameter-build", record)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    yield TestClient(create_app(s3_store)), calls


def every_route(client: TestClient) -> list[tuple[str, int]]:
    """Each route a client may call, as a script automating the platform calls it: the status
    each answered (a route that failed early would check none of its calls)."""
    m, alias, plan = "/control/models/m", "/control/models/m/aliases", {"steps": [0.1, 1]}
    held = {"a": "1", "b": "2", "data": "batch/m/input/held.csv", "label": "y"}
    sent: list[tuple[str, str, Any]] = [
        *[("GET", path, None) for path in ["/control/models", m, f"{m}/versions/1"]],
        ("GET", f"{m}/versions/1/card", None),
        ("PUT", f"{alias}/staging", {"version": "2"}),
        ("PUT", f"{alias}/staging", {"weights": {"1": 0.5, "2": 0.5}}),
        ("PUT", f"{alias}/staging/shadow", {"version": "3", "sample": 0.5}),
        ("DELETE", f"{alias}/staging/shadow", None),
        ("POST", f"{alias}/staging/rollback", None),
        ("GET", f"{alias}/staging", None),
        ("DELETE", f"{alias}/staging", None),
        ("PUT", f"{m}/capture", {"sample": 0.5}),
        ("GET", f"{m}/capture", None),
        ("DELETE", f"{m}/capture", None),
        (
            "POST",
            f"{m}/rollouts",
            {"version": "2", "plan": {**plan, "bake_s": 60, "max_error_rate": 0.01}},
        ),
        ("GET", f"{m}/rollouts", None),
        ("GET", f"{m}/rollouts/production", None),
        ("POST", f"{m}/rollouts/production/abort", None),
        ("POST", f"{m}/compare", {**held, "latency_calls": 0}),
        ("POST", f"{m}/compare", {**held, "data": "capture/m/none.jsonl"}),
        ("POST", "/control/batch/m/jobs", {"source": "uploads/big.csv"}),
        ("GET", "/control/batch/m/jobs", None),
        ("GET", "/control/batch/m/jobs/big.csv", None),
        ("DELETE", f"{m}/versions/2", None),
    ]
    answered = [
        (f"{method} {path}", client.request(method, path, json=body).status_code)
        for method, path, body in sent
    ]
    put = client.put("/control/batch/m/jobs/a.csv", content=b"x_0,x_1,x_2,x_3\n1,2,3,4\n")
    return [*answered, ("PUT /control/batch/m/jobs/a.csv", put.status_code)]


def test_every_call_of_every_route_is_allowed_and_every_grant_is_used(
    recorded: tuple[TestClient, list[Call]], s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, calls = recorded
    answered = every_route(client)
    # A job pending past the time its message can be in flight: the status asks the two
    # queues' depths (both empty: its event never arrived) and looks for a sharded run's plan.
    monkeypatch.setattr(stalls, "now", lambda: time.time() + stalls.DEAD_LETTER_AFTER_S + 60)
    status = client.get("/control/batch/m/jobs/big.csv").json()
    assert (status["stalled"], status["held"]) == (True, "none"), status
    assert any(key.endswith("/plan.json") for _, key in calls)
    assert [(route, status) for route, status in answered if status >= 300] == [
        ("GET /control/models/m/versions/1/card", 404),  # no card published: read, not found
        ("POST /control/models/m/compare", 404),  # the second: no such capture file
    ]
    found = grants(s3_bucket)
    refused = sorted({call for call in calls if allowing(call, s3_bucket, found) is None})
    assert refused == [], "calls the ControlPlane role does not allow"
    used = {(a, r) for a, r, _ in (allowing(c, s3_bucket, found) for c in calls)}
    unused = {
        (action, resource.split(f"{s3_bucket}/", 1)[-1])
        for action, resource, _ in found
        if (action, resource) not in used
    }
    assert unused == ONLY_ON_FAILURE, "grants no route uses"
