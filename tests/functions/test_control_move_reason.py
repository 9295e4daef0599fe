"""Why an alias moved, over the control plane: a `reason` in the body of each move (an alias
PUT, whole, canary or split; a shadow PUT; a rollback; a rollout start and abort) and in the
query of the moves without one (a shadow's and an alias's DELETE), kept as `reason` in the
alias history its GET answers; an unfit one a 400 saying what to fix, as is a move without one
where AIAAS_REQUIRE_REASON is on. Before it, a move said who and when, never why."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest
from fastapi.testclient import TestClient

from functions.control import rollouts_api
from functions.control.app import create_app
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.s3store import S3Store
from functions.runtime.store import ObjectStore
from tests.functions.test_control_models import publish_versions
from tests.functions.test_control_rollouts import aws_started, started

MODEL = "iris"
ALIAS = f"/control/models/{MODEL}/aliases"
WHY = "CHG-1234: fixes false declines"
REQUIRED = (
    'every alias move here needs a reason (AIAAS_REQUIRE_REASON is on): give a "reason" in the '
    'JSON body, such as a change ticket ("CHG-1234: fixes false declines")'
)
PLAN = {"steps": [0.1, 1], "bake_s": 60, "max_error_rate": 0.01}


def test_each_move_keeps_its_reason_in_the_history_its_get_answers(client: TestClient) -> None:
    moves = [
        client.put(f"{ALIAS}/production", json={"version": "2", "weight": 0.1, "reason": WHY}),
        client.put(f"{ALIAS}/production", json={"weights": {"1": 0.5, "2": 0.5}, "reason": "B"}),
        client.put(f"{ALIAS}/production/shadow", json={"version": "3", "reason": "C"}),
        client.delete(f"{ALIAS}/production/shadow", params={"reason": "D"}),
        client.post(f"{ALIAS}/production/rollback", json={"reason": "INC-7: p99 doubled"}),
    ]
    assert [m.status_code for m in moves] == [200] * 5, [m.json() for m in moves]
    assert [m.json()["reason"] for m in moves] == [WHY, "B", "C", "D", "INC-7: p99 doubled"]
    record = client.get(f"{ALIAS}/production").json()
    assert record["reason"] == "INC-7: p99 doubled"
    assert [e["reason"] for e in record["history"]] == ["D", "C", "B", WHY, None]

    # A deletion says why beside the state it ended; a rollback restores it and says so.
    deleted = client.delete(f"{ALIAS}/production", params={"force": "true", "reason": "INC-8"})
    assert deleted.status_code == 200, deleted.json()
    back = client.post(f"{ALIAS}/production/rollback", json={"reason": "INC-8 undone"}).json()
    assert back["reason"] == "INC-8 undone"
    assert (back["history"][0]["deleted_reason"], back["history"][0]["reason"]) == (
        "INC-8",
        "INC-7: p99 doubled",
    )


def test_a_move_without_a_reason_answers_as_before(client: TestClient) -> None:
    moved = client.put(f"{ALIAS}/production", json={"version": "2"})
    assert moved.status_code == 200
    assert moved.json()["reason"] is None and moved.json()["history"][0]["reason"] is None


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("x" * 501, "the reason is 501 characters; at most 500 are kept"),
        ("CHG-1\r\nX-Forged: 1", r"the reason holds a control character ('\r' at character 6)"),
        ("\x1b]0;owned\x07", r"the reason holds a control character ('\x1b' at character 1)"),
    ],
)
def test_an_unfit_reason_is_a_400_and_nothing_moves(
    client: TestClient, reason: str, said: str
) -> None:
    before = client.get(f"{ALIAS}/production")
    answers = [
        client.put(f"{ALIAS}/production", json={"version": "2", "reason": reason}),
        client.put(f"{ALIAS}/production", json={"weights": {"1": 0.5, "2": 0.5}, "reason": reason}),
        client.put(f"{ALIAS}/production/shadow", json={"version": "3", "reason": reason}),
        client.delete(f"{ALIAS}/production/shadow", params={"reason": reason}),
        client.post(f"{ALIAS}/production/rollback", json={"reason": reason}),
        client.delete(f"{ALIAS}/production", params={"force": "true", "reason": reason}),
        client.post(f"/control/models/{MODEL}/rollouts", json={"version": "2", "plan": PLAN,
                                                               "reason": reason}),
    ]  # fmt: skip
    for answer in answers:
        assert answer.status_code == 400, answer.json()
        assert said in answer.json()["error"]
    after = client.get(f"{ALIAS}/production")
    assert after.json() == before.json() and after.headers["etag"] == before.headers["etag"]


def test_a_reason_that_is_not_text_is_refused(client: TestClient) -> None:
    answer = client.put(f"{ALIAS}/production", json={"version": "2", "reason": 7})
    assert answer.status_code == 422
    assert "reason" in answer.json()["error"]


def test_required_reasons_refuse_each_move_without_one(
    store: ObjectStore, classifier_onnx: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_REQUIRE_REASON", "1")  # read once, as the app is built
    registry = publish_versions(store, classifier_onnx, "1", "2", "3")
    registry.set_alias(MODEL, "production", "1", actor="ci")
    client = TestClient(create_app(store))
    before = client.get(f"{ALIAS}/production").json()
    query = REQUIRED.replace('a "reason" in the JSON body', "?reason=TEXT")
    for answer, said in (
        (client.put(f"{ALIAS}/production", json={"version": "2"}), REQUIRED),
        (client.put(f"{ALIAS}/production", json={"version": "2", "reason": " "}), REQUIRED),
        (client.put(f"{ALIAS}/production/shadow", json={"version": "3"}), REQUIRED),
        (client.delete(f"{ALIAS}/production/shadow"), query),
        (client.post(f"{ALIAS}/production/rollback"), REQUIRED),
        (client.delete(f"{ALIAS}/production", params={"force": "true"}), query),
        (client.post(f"/control/models/{MODEL}/rollouts", json={"version": "2", "plan": PLAN}),
         REQUIRED),
        (client.post(f"/control/models/{MODEL}/rollouts/production/abort"), REQUIRED),
    ):  # fmt: skip
        assert (answer.status_code, answer.json()) == (400, {"error": said})
    assert client.get(f"{ALIAS}/production").json() == before
    assert client.get(f"{ALIAS}/production").status_code == 200  # reads need none
    moved = client.put(f"{ALIAS}/production", json={"version": "2", "reason": WHY})
    assert (moved.status_code, moved.json()["reason"]) == (200, WHY)


def test_a_rollout_abort_keeps_its_reason(tmp_path: Path) -> None:
    client = started(tmp_path)  # a running rollout of ro, started without a reason
    bad = client.post("/control/models/ro/rollouts/production/abort", json={"reason": "a\nb"})
    assert bad.status_code == 400 and "control character" in bad.json()["error"]
    assert client.get("/control/models/ro/rollouts/production").json()["state"] == "running"
    aborted = client.post(
        "/control/models/ro/rollouts/production/abort", json={"reason": "INC-9: pager"}
    )
    assert aborted.status_code == 200, aborted.json()
    last = aborted.json()["log"][-1]
    assert (last["event"], last["reason"]) == ("aborted", "INC-9: pager")
    alias = client.get("/control/models/ro/aliases/production").json()
    assert (alias["version"], alias["reason"]) == ("1", "INC-9: pager")


def test_an_aws_rollout_start_keeps_its_reason(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = boto3.client("stepfunctions").create_state_machine(
        name=f"rollout-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/rollout",
    )["stateMachineArn"]
    monkeypatch.setattr(rollouts_api, "STATE_MACHINE", machine)
    client = aws_started(s3_store, tmp_path, "ro")
    body = {"version": "2", "plan": PLAN, "reason": WHY}
    answer = client.post("/control/models/ro/rollouts", json=body)
    assert answer.status_code == 202, answer.json()
    assert answer.json()["started_reason"] == WHY and answer.json()["log"][0]["reason"] == WHY
    alias = client.get("/control/models/ro/aliases/production").json()
    assert (alias["weights"], alias["reason"]) == ({"1": 0.9, "2": 0.1}, WHY)
    assert RolloutBook(s3_store).require("ro", "production").started_reason == WHY


def test_the_openapi_document_says_where_a_reason_goes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for body in ("AliasChange", "RollbackSpec", "ShadowSpec", "RolloutStart", "RolloutAbort"):
        field = schemas[body]["properties"]["reason"]
        assert field["maxLength"] == 500, body
        assert "AIAAS_REQUIRE_REASON" in field["description"]
    for path in (
        "/control/models/{name}/aliases/{alias}",
        "/control/models/{name}/aliases/{alias}/shadow",
    ):
        params = doc["paths"][path]["delete"]["parameters"]
        (reason,) = [p for p in params if p["name"] == "reason"]
        assert reason["in"] == "query" and reason["schema"]["maxLength"] == 500
    entry = schemas["AliasHistoryEntry"]["properties"]
    assert {"reason", "deleted_reason"} <= set(entry)
    assert "reason" in schemas["AliasRecord"]["properties"]
