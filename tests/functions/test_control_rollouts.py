"""The control plane's rollouts: listed and read with their log, aborted (traffic back on the
baseline), and a start refused with a 4xx that says what to do where no state machine runs
the loop (a directory store under `aiaas serve`)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from functions.control import rollouts_api
from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import REREAD_MARGIN_S, RolloutPlan
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests.rollout_models import publish

MODEL = "ro"


def started(tmp_path: Path) -> TestClient:
    store = LocalStore(tmp_path / "store")
    registry = Registry(store)
    publish(registry, tmp_path, MODEL, "1", "healthy")
    publish(registry, tmp_path, MODEL, "2", "healthy")
    registry.set_alias(MODEL, "production", "1")
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
    from infra.cli.rollout_commands import _NoMetrics

    RolloutEngine(registry, _NoMetrics()).start(MODEL, "2", plan, alias="production", actor="cli")
    return TestClient(create_app(store))


def test_rollouts_are_listed_read_and_aborted(tmp_path: Path) -> None:
    client = started(tmp_path)
    listed = client.get(f"/control/models/{MODEL}/rollouts")
    assert listed.status_code == 200
    (only,) = listed.json()["rollouts"]
    assert (only["candidate"], only["state"], only["share"]) == ("2", "running", 0.1)
    one = client.get(f"/control/models/{MODEL}/rollouts/production").json()
    assert [e["event"] for e in one["log"]] == ["started", "step"]
    aborted = client.post(f"/control/models/{MODEL}/rollouts/production/abort")
    assert (aborted.status_code, aborted.json()["state"]) == (200, "aborted")
    alias = client.get(f"/control/models/{MODEL}/aliases/production").json()
    assert (alias["version"], alias["weights"]) == ("1", None)
    again = client.post(f"/control/models/{MODEL}/rollouts/production/abort")
    assert again.status_code == 409
    assert "is not running (it aborted)" in again.json()["error"]


def test_errors_say_what_to_fix(tmp_path: Path) -> None:
    client = started(tmp_path)
    missing = client.get(f"/control/models/{MODEL}/rollouts/staging")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "no rollout of model 'ro' on alias 'staging'"},
    )
    assert client.get("/control/models/nope/rollouts").status_code == 404
    body = {"version": "2", "plan": {"steps": [0.1, 1], "bake_s": 1, "max_error_rate": 0.01}}
    start = client.post(f"/control/models/{MODEL}/rollouts", json=body)
    assert start.status_code == 409
    assert "aiaas rollout ro 2" in start.json()["error"]
    unknown = client.post(f"/control/models/{MODEL}/rollouts", json={**body, "version": "9"})
    assert (unknown.status_code, unknown.json()) == (  # was a 409: "run `aiaas rollout ro 9`"
        404,
        {"error": "version '9' of model 'ro' not found"},
    )
    bad = {"version": "2", "plan": {"steps": [0.5, 0.1, 1], "bake_s": 1, "max_error_rate": 0.01}}
    refused = client.post(f"/control/models/{MODEL}/rollouts", json=bad)
    assert (refused.status_code, refused.json()["error"]) == (
        400,
        "steps must rise: each share above the one before; got [0.5, 0.1, 1]",
    )
    none = {"version": "2", "plan": {**body["plan"], "min_requests": 0}}  # advanced on nothing
    refused = client.post(f"/control/models/{MODEL}/rollouts", json=none)
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("min_requests must be at least 1")


def aws_started(s3_store: S3Store, tmp_path: Path, name: str) -> TestClient:
    registry = Registry(s3_store)
    publish(registry, tmp_path, name, "1", "healthy")
    publish(registry, tmp_path, name, "2", "healthy")
    registry.set_alias(name, "production", "1")
    return TestClient(create_app(s3_store))


def test_an_aws_start_names_its_execution_within_80_characters_and_waits_the_alias_ttl(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions (moto's, on the loopback server) refuses names over 80 characters: a
    64-character model was refused after its first step had moved. On S3 each step waits the
    servers' alias TTL before it is judged."""
    client = boto3.client("stepfunctions")
    machine = client.create_state_machine(
        name=f"rollout-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]
    monkeypatch.setattr(rollouts_api, "STATE_MACHINE", machine)
    monkeypatch.setenv("AIAAS_ALIAS_TTL", "45")
    name = "m" * 64
    body = {"version": "2", "plan": {"steps": [0.1, 1], "bake_s": 60, "max_error_rate": 0.01}}
    started = aws_started(s3_store, tmp_path, name).post(
        f"/control/models/{name}/rollouts", json=body
    )
    assert started.status_code == 202, started.json()
    assert started.json()["plan"]["settle_s"] == 45 + REREAD_MARGIN_S  # and the re-read itself
    (execution,) = client.list_executions(stateMachineArn=machine)["executions"]
    assert len(execution["name"]) <= 80 and execution["name"].endswith(started.json()["id"])
    assert rollouts_api.execution_name(name, "production", "x") != rollouts_api.execution_name(
        name[:-1] + "n", "production", "x"
    )


def test_an_aws_start_whose_state_machine_fails_to_start_puts_the_alias_back(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:no-such-machine"
    monkeypatch.setattr(rollouts_api, "STATE_MACHINE", missing)
    client = aws_started(s3_store, tmp_path, MODEL)
    body = {"version": "2", "plan": {"steps": [0.1, 1], "bake_s": 60, "max_error_rate": 0.01}}
    refused = client.post(f"/control/models/{MODEL}/rollouts", json=body)
    assert refused.status_code == 503
    assert "could not start its state machine and was aborted" in refused.json()["error"]
    alias = client.get(f"/control/models/{MODEL}/aliases/production").json()
    assert (alias["version"], alias["weights"]) == ("1", None)
    record = client.get(f"/control/models/{MODEL}/rollouts/production").json()
    assert record["state"] == "aborted"


def test_a_rollout_whose_alias_was_moved_by_hand_says_it_is_not_in_effect(
    tmp_path: Path,
) -> None:
    client = started(tmp_path)
    path = f"/control/models/{MODEL}/rollouts/production"
    assert client.get(path).json()["not_in_effect"] is None  # there, and null: in effect
    moved = client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "2"})
    assert moved.status_code == 200
    one = client.get(path).json()
    assert one["state"] == "running"  # until its driver's next check
    assert one["not_in_effect"] == "the alias was moved outside the rollout (it serves 2)"
