"""Rollout starts and aborts from two operators through the control plane's Lambda handler, on
S3 (moto's server, with moto's Step Functions): the golden events (events/control/rollout_*)
as API Gateway sends them with the IAM caller, `ETag` on every rollout answer, and the 412 a
stale or repeated request gets, which names the rollout there and who started it and changes
nothing (no second execution, the split as it was)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import orjson
import pytest

from functions.control import rollouts_api
from tests.functions.test_control_events import ALICE, handler, invoke
from tests.functions.test_control_http_semantics import send

__all__ = ["handler"]  # the golden events' fixture: digits-mlp 1 and 2, production on 2

ROLLOUTS = "/control/models/digits-mlp/rollouts"
BOB = "arn:aws:iam::123456789012:user/bob"


@pytest.fixture
def machine(moto_server: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A state machine on moto's Step Functions, as the control plane's environment names it."""
    arn: str = boto3.client("stepfunctions").create_state_machine(
        name=f"rollout-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]
    monkeypatch.setattr(rollouts_api, "STATE_MACHINE", arn)
    return arn


def executions(machine: str) -> list[dict[str, Any]]:
    """Each execution's input: the rollout it drives."""
    client = boto3.client("stepfunctions")
    found = client.list_executions(stateMachineArn=machine)["executions"]
    arns = [e["executionArn"] for e in found]
    return [json.loads(client.describe_execution(executionArn=a)["input"]) for a in arns]


def test_a_start_with_if_none_match_runs_once_and_its_retry_is_told_who_runs_it(
    handler: Any, machine: str
) -> None:
    status, headers, body = invoke(handler, "rollout_start")
    started = orjson.loads(body)
    assert (status, started["state"], started["started_by"]) == (202, "running", ALICE)
    assert headers["etag"] == started["etag"] and started["etag"].startswith('"')
    assert started["log"][0]["message"] == "2 -> 1 (If-None-Match: *)"
    status, _, body = invoke(handler, "rollout_start")  # the client's retry
    assert (status, orjson.loads(body)["error"]) == (
        412,
        "the rollout of digits-mlp@production is not idle (If-None-Match: *): rollout "
        f"{started['id']} (2 -> 1) is running at 10%, started by {ALICE} at "
        f"{started['started_at']}",
    )
    expected = {"model": "digits-mlp", "alias": "production", "id": started["id"]}
    assert executions(machine) == [expected]  # one, and it drives this rollout only


def test_an_abort_from_a_stale_view_is_refused_and_the_current_etag_aborts(
    handler: Any, machine: str
) -> None:
    """Bob's abort (the golden event) carries the ETag of a rollout he read earlier: Alice's
    rollout, started since, runs on. With the ETag of a GET, his abort goes through."""
    started = orjson.loads(invoke(handler, "rollout_start")[2])
    status, _, body = invoke(handler, "rollout_abort")
    assert status == 412
    assert orjson.loads(body)["error"].startswith(
        "the rollout of digits-mlp@production changed since you read it: rollout "
        f"{started['id']} (2 -> 1) is running at 10%, started by {ALICE}"
    )
    status, headers, read = send(handler, "GET", f"{ROLLOUTS}/production")
    assert (status, read["state"], headers["etag"]) == (200, "running", started["etag"])
    alias = send(handler, "GET", "/control/models/digits-mlp/aliases/production")[2]
    assert alias["weights"] == {"2": 0.9, "1": 0.1}  # untouched by the refused abort
    status, headers, aborted = send(
        handler, "POST", f"{ROLLOUTS}/production/abort", if_match=read["etag"]
    )
    assert (status, aborted["state"]) == (200, "aborted")
    assert headers["etag"] == aborted["etag"] != read["etag"]
    assert aborted["log"][-1]["message"].endswith(f"If-Match: {read['etag']}")
    listed = send(handler, "GET", ROLLOUTS)[2]["rollouts"]
    assert [r["etag"] for r in listed] == [aborted["etag"]]
