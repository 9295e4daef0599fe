"""Deleting an alias over the control plane: recorded (who, when, where it pointed), undone by a
rollback, and refused where it would move live traffic unasked: the default alias (a bare name
then serves the newest version) without `?force=true`, or an alias a rollout drives.

It used to delete the record and its history outright: `production` gone, every caller of the
bare name switched to the newest (never promoted) version, and the rollback answered 404.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests.functions.test_control_models import publish_versions
from tests.functions.test_control_rollouts import started

MODEL = "iris"
ALIAS = f"/control/models/{MODEL}/aliases"


@pytest.fixture
def client(store: ObjectStore, classifier_onnx: Path) -> TestClient:
    registry = publish_versions(store, classifier_onnx, "1", "2", "3")
    registry.set_alias(MODEL, "production", "1", actor="ci")
    registry.set_alias(MODEL, "production", "2", actor="ci")
    registry.set_alias(MODEL, "staging", "1", actor="ci")
    registry.set_alias(MODEL, "staging", "3", weight=0.25, actor="ci")
    return TestClient(create_app(store))


def test_the_default_alias_is_deleted_only_when_forced(client: TestClient) -> None:
    refused = client.delete(f"{ALIAS}/production")
    assert refused.status_code == 409
    assert "to the newest version, 3; send ?force=true" in refused.json()["error"]
    assert client.get(f"{ALIAS}/production").json()["version"] == "2"
    forced = client.delete(f"{ALIAS}/production", params={"force": "true"})
    assert (forced.status_code, forced.json()) == (200, {"deleted": "iris@production"})


def test_a_deleted_alias_says_who_deleted_it_and_a_rollback_restores_it(
    client: TestClient,
) -> None:
    assert client.delete(f"{ALIAS}/staging").status_code == 200
    gone = client.get(f"{ALIAS}/staging")
    assert gone.status_code == 404
    message = gone.json()["error"]
    assert "was deleted by unauthenticated@testclient at " in message
    assert "(it pointed at 1 (75%) + 3 (25%)); roll it back to restore it" in message

    back = client.post(f"{ALIAS}/staging/rollback")
    assert back.status_code == 200
    record = back.json()
    assert (record["version"], record["weights"]) == ("1", {"1": 0.75, "3": 0.25})
    deletion = record["history"][0]
    assert deletion["deleted_by"] == "unauthenticated@testclient"
    assert (deletion["version"], deletion["updated_by"]) == ("1", "ci")
    assert [h["version"] for h in record["history"]] == ["1", "1"]


def test_promoting_a_deleted_alias_again_carries_its_history_on(client: TestClient) -> None:
    assert client.delete(f"{ALIAS}/production?force=true").status_code == 200
    again = client.put(f"{ALIAS}/production", json={"version": "3"})
    assert again.status_code == 201
    history = again.json()["history"]
    assert [h["version"] for h in history] == ["2", "1"]
    assert history[0]["deleted_by"] == "unauthenticated@testclient"
    back = client.post(f"{ALIAS}/production/rollback")  # to the version before the deletion
    assert (back.status_code, back.json()["version"]) == (200, "2")


def test_an_alias_never_created_still_rolls_back_as_not_found(client: TestClient) -> None:
    missing = client.post(f"{ALIAS}/nope/rollback")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "alias 'nope' of model 'iris' not found"},
    )


def test_an_alias_a_rollout_drives_is_not_deleted(tmp_path: Path) -> None:
    client = started(tmp_path)  # model "ro", a rollout of 2 running on production
    refused = client.delete("/control/models/ro/aliases/production?force=true")
    assert refused.status_code == 409
    assert "a rollout of ro@production is running (version 2" in refused.json()["error"]
    assert client.get("/control/models/ro/aliases/production").status_code == 200


def test_the_cli_shows_the_deletion_and_rolls_it_back(
    local_store: LocalStore, classifier_onnx: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = publish_versions(local_store, classifier_onnx, "1", "2")
    registry.set_alias(MODEL, "staging", "1", actor="ci")
    client = TestClient(create_app(local_store))
    assert client.delete(f"{ALIAS}/staging").status_code == 200
    at = ["--store", local_store.uri]
    assert main([*at, "versions", MODEL]) == 0
    shown = capsys.readouterr().out
    assert "@staging deleted " in shown
    assert "by unauthenticated@testclient, pointed at 1 (aiaas rollback iris" in shown
    assert main([*at, "versions", MODEL, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["deleted_aliases"]["staging"]["version"] == "1"
    assert main([*at, "rollback", MODEL, "--alias", "staging"]) == 0
    assert "iris@staging -> 1 (rolled back from its deletion)" in capsys.readouterr().out
    assert Registry(local_store).alias(MODEL, "staging") == "1"
