"""The control plane says a text version reading token ids as other tokens on every move of a
share of the callers, as the CLI does (leftovers2 2).

`aiaas promote --weight`, a split and `aiaas rollout` warn on stderr when the canary's
tokenizer reads the callers' ids as other tokens; the control plane answered it on whole alias
moves only: a canary PUT (`weight`), a split PUT (`weights`) and a rollout start answered no
warning, while clients that tokenize themselves got wrong labels with a 200 from the share
moved. Real parts: the test transformer and its two tokenizer.json files published by the real
CLI, the real control plane app, and moto's Step Functions for the rollout's state machine.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient

from functions.control import rollouts_api
from functions.control.app import create_app
from tests.infra.test_publish_tokenizer import MODEL
from tests.infra.test_token_ids_change import _two_vocabularies

ALIAS = f"/control/models/{MODEL}/aliases/production"


def _says_ids(said: list[str] | None, to: str, base: str) -> bool:
    start = f"version {to} of {MODEL} reads token ids as other tokens than {MODEL}:{base} ("
    return bool(said) and any(line.startswith(start) for line in said or [])


def test_a_canary_and_a_split_put_say_it_and_the_same_split_again_does_not(
    tmp_path: Path,
) -> None:
    client = TestClient(create_app(_two_vocabularies(tmp_path, "1")))
    canary = client.put(ALIAS, json={"version": "2", "weight": 0.1})
    assert canary.status_code == 200, canary.text
    assert _says_ids(canary.json()["warnings"], "2", "1"), canary.json()  # was null
    split = client.put(ALIAS, json={"weights": {"1": 0.5, "2": 0.5}})
    assert split.status_code == 200, split.text
    assert _says_ids(split.json()["warnings"], "2", "1"), split.json()  # once, not both ways
    assert len(split.json()["warnings"]) == 1
    again = client.put(ALIAS, json={"weights": {"1": 0.5, "2": 0.5}})
    assert again.status_code == 200 and again.json()["warnings"] is None, again.json()
    whole = client.put(ALIAS, json={"version": "1"})  # the canary's callers back onto 1
    assert _says_ids(whole.json()["warnings"], "1", "2"), whole.json()


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


def test_a_rollout_start_says_it(tmp_path: Path, machine: str) -> None:
    client = TestClient(create_app(_two_vocabularies(tmp_path, "1")))
    body = {"version": "2", "plan": {"steps": [0.1, 1], "bake_s": 60, "max_error_rate": 0.01}}
    started = client.post(f"/control/models/{MODEL}/rollouts", json=body)
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "running"
    assert _says_ids(started.json()["warnings"], "2", "1"), started.json()  # was absent
    assert "send raw text" in started.json()["warnings"][0]
