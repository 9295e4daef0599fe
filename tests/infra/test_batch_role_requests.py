"""A batch input big enough to be sharded, through the batch state machine, against the policies.

The batch function answers the input's SQS message by starting the state machine (moto's Step
Functions); then the definition (infra/statemachines/batch.asl.json) is walked as in
tests/functions/test_batch_state_machine.py, except that each of its Lambda tasks is the
deployed function invoked cold (`tests.invoke_function`), and its Distributed Map reads the
plan from the bucket as the state machine's role. moto's recorder keeps what each sent: every
request must be allowed by the batch function's own policy (the plan, shards, merge, the
deletes of its parts) or the state machine's, with the bucket policy (tests/iam_policy.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from tests.functions.test_batch_state_machine import Walker, resolve
from tests.iam_policy import S3Request
from tests.role_requests import BUCKET, EVENTS, RecordedStack, publish_digits, refused_by_run

ASL = Path(__file__).resolve().parents[2] / "infra" / "statemachines" / "batch.asl.json"
KEY = "registry/batch/digits-mlp/input/big.csv"


class DeployedWalker(Walker):
    """The state machine's states, its Lambda tasks the deployed function, cold, each."""

    def __init__(self, stack: RecordedStack, env: dict[str, str], work: Path) -> None:
        super().__init__(batch=None)  # type: ignore[arg-type]
        self.stack, self.env, self.work = stack, env, work
        self.sent: dict[str, list[S3Request]] = {}

    def task(self, state: dict[str, Any], document: Any) -> Any:
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        payload = resolve(state["Parameters"], document)["Payload"]
        step = f"BatchFunction {payload['aiaas_batch']}"
        self.invocations.append(payload["aiaas_batch"])
        event = self.work / f"task-{len(self.invocations)}.json"
        event.write_text(json.dumps(payload))
        result = {"Payload": self.stack.invoke("BatchFunction", event, self.env), "StatusCode": 200}
        self.sent.setdefault(step, []).extend(self.stack.taken())
        if "ResultSelector" in state:
            result = resolve(state["ResultSelector"], result)
        return result

    def map(self, state: dict[str, Any], document: Any) -> list[Any]:
        where = resolve(state["ItemReader"]["Parameters"], document)
        self.stack.taken()
        body = self.stack.s3.get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read()
        self.sent.setdefault("BatchStateMachine ItemReader", []).extend(self.stack.taken())
        return [self.run(state["ItemProcessor"], item)[1] for item in json.loads(body)]


@pytest.fixture(scope="module")
def sent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[S3Request]]]:
    work = tmp_path_factory.mktemp("batch-requests")
    stack = RecordedStack(work).start()
    try:
        registry = Registry(S3Store(BUCKET, "registry", client=stack.s3))
        publish_digits(registry, work, {"1": {}})
        registry.set_alias("digits-mlp", "production", "1", actor="ci")
        golden = (EVENTS / "local" / "golden.csv").read_text().splitlines()
        rows = [f"{n}-{line}" for n in range(40) for line in golden[1:]]
        stack.s3.put_object(Bucket=BUCKET, Key=KEY, Body="\n".join([golden[0], *rows]) + "\n")
        head = stack.s3.head_object(Bucket=BUCKET, Key=KEY)
        event = json.loads((EVENTS / "batch_sqs.json").read_text())
        notice = json.loads(event["Records"][0]["body"])
        notice["Records"][0]["s3"]["object"].update(
            key=quote_plus(KEY, safe="/"), size=head["ContentLength"], eTag=head["ETag"].strip('"')
        )
        event["Records"][0]["body"] = json.dumps(notice)
        (work / "big.json").write_text(json.dumps(event))
        machine = stack.state_machine("batch")
        env = {"AIAAS_BATCH_STATE_MACHINE": machine, "AIAAS_BATCH_SHARD_BYTES": "16384"}

        answer = stack.invoke("BatchFunction", work / "big.json", env)
        assert answer == {"batchItemFailures": []}
        started = stack.taken()
        sfn = boto3.client("stepfunctions", endpoint_url=stack.server.endpoint)
        (execution,) = sfn.list_executions(stateMachineArn=machine)["executions"]
        document = json.loads(
            sfn.describe_execution(executionArn=execution["executionArn"])["input"]
        )
        assert document["shards"] > 1, document

        walker = DeployedWalker(stack, env, work)
        kind, _ = walker.run(json.loads(ASL.read_text()), document)
        assert kind == "Succeed", walker.invocations
        yield {"BatchFunction sqs": started, **walker.sent}
    finally:
        stack.stop()


def test_a_sharded_batch_makes_only_requests_its_roles_allow(
    sent: dict[str, list[S3Request]],
) -> None:
    assert refused_by_run(sent) == []


def test_the_walk_took_every_step_and_cleaned_up(sent: dict[str, list[S3Request]]) -> None:
    assert sorted(sent) == [
        "BatchFunction merge",
        "BatchFunction plan",
        "BatchFunction shard",
        "BatchFunction sqs",
        "BatchStateMachine ItemReader",
    ]
    assert [r.action for r in sent["BatchFunction sqs"] if r.action.startswith("states:")] == [
        "states:StartExecution"
    ]
    assert any(r.action == "s3:DeleteObject" for r in sent["BatchFunction merge"])


@pytest.mark.parametrize("action", ["states:DescribeExecution", "states:StopExecution"])
def test_the_state_machine_may_watch_and_stop_its_distributed_map_children(action: str) -> None:
    """A Distributed Map's child executions are named `<state machine>/<map run label>:<id>`
    (IAM cannot run here: the ARN's shape is AWS's, the decision this module's). The statement
    granted `<state machine>:*` alone, which matches the parent's executions, not the children.
    Nothing wider either: another stack's state machine is refused."""
    from tests.iam_policy import ACCOUNT, REGION, STACK, decision
    from tests.role_requests import statements

    found = statements("BatchStateMachine")
    base = f"arn:aws:states:{REGION}:{ACCOUNT}:execution"
    child = f"{base}:{STACK}-batch/Shards:3f1c2a9e-8b1d-4a43-9c1e-0c9a5f1b2d7e"
    parent = f"{base}:{STACK}-batch:run-1"
    other = f"{base}:{STACK}-batchier/Shards:1"
    assert decision(S3Request(action, child), found, BUCKET) == "allow"
    assert decision(S3Request(action, parent), found, BUCKET) == "allow"
    assert decision(S3Request(action, other), found, BUCKET) == "implicit deny"
