"""The batch function hands a big input to Step Functions (moto's server on loopback), named by
its run id; an execution of that name that closed without a summary must not hold it for good."""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from functions.batch.handler import dispatch
from functions.runtime.s3store import S3Store
from tests.batch_support import features_csv, publish_classifier, service, sqs_for

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "infra" / "statemachines" / "batch.asl.json"
KEY = "batch/iris/input/big.csv"


@pytest.fixture
def machine(moto_server: Any) -> str:
    """A state machine that stays RUNNING until stopped, as a long Distributed Map does."""
    sfn = boto3.client("stepfunctions")
    waits = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    return str(
        sfn.create_state_machine(
            name=f"batch-{uuid.uuid4().hex[:8]}",
            definition=json.dumps(waits),
            roleArn="arn:aws:iam::123456789012:role/batch",
        )["stateMachineArn"]
    )


def executions(machine: str) -> list[tuple[str, str]]:
    found = boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    return sorted((e["name"], e["status"]) for e in found)


def test_an_execution_closed_without_a_summary_is_started_again(
    s3_store: S3Store, tmp_path: Path, machine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Step Functions answers ExecutionAlreadyExists for a closed execution of a name for 90
    days: a run stopped (or timed out, or whose RecordFailure failed) was taken for running,
    its message deleted, and the input stayed pending for good."""
    publish_classifier(s3_store, tmp_path)
    s3_store.put_bytes(KEY, features_csv(np.ones((40, 4))).encode())
    batch = service(s3_store, tmp_path)
    batch.settings = dataclasses.replace(batch.settings, state_machine=machine, shard_bytes=100)
    event = sqs_for(s3_store, KEY)

    assert dispatch(batch, event) == {"batchItemFailures": []}
    ((run_id, status),) = executions(machine)
    assert status == "RUNNING"
    assert dispatch(batch, event) == {"batchItemFailures": []}  # a duplicate: still running
    assert executions(machine) == [(run_id, "RUNNING")]

    sfn = boto3.client("stepfunctions")
    arn = sfn.list_executions(stateMachineArn=machine)["executions"][0]["executionArn"]
    sfn.stop_execution(executionArn=arn, error="States.Timeout", cause="timed out")
    with caplog.at_level(logging.INFO, logger="aiaas.batch"):
        assert dispatch(batch, event) == {"batchItemFailures": []}
    assert executions(machine) == [(run_id, "ABORTED"), (f"{run_id}-2", "RUNNING")]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        f"execution {run_id} of run {run_id} ended ABORTED without a summary; starting it again"
    ]
    assert dispatch(batch, event) == {"batchItemFailures": []}  # the new one is running
    assert executions(machine) == [(run_id, "ABORTED"), (f"{run_id}-2", "RUNNING")]


def test_every_lambda_task_retries_a_throttled_invocation() -> None:
    """RecordFailure had no Retry: a throttled `fail` (likely when the Map's shards use up the
    function's concurrency) ended the execution with no summary."""
    tasks: dict[str, dict[str, Any]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, state in node.get("States", {}).items():
                if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                    tasks[name] = state
            for value in node.values():
                walk(value)

    walk(json.loads(ASL.read_text()))
    assert "RecordFailure" in tasks
    for name, state in tasks.items():
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        assert {"Lambda.TooManyRequestsException", "StoreError"} <= retried, name
