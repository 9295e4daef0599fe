"""Control plane: `PUT .../aliases/{alias}/shadow` names a shadow version and its sample rate,
recorded (and audited) like any alias move; `DELETE` ends it; invalid ones are a 4xx
`{"error"}` saying what to fix, and change nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.functions.test_control_models import MODEL

ALIAS = f"/control/models/{MODEL}/aliases/production"


def test_a_shadow_is_set_audited_kept_by_a_promote_and_removed(client: TestClient) -> None:
    response = client.put(f"{ALIAS}/shadow", json={"version": "2", "sample": 0.2})
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["version"], record["shadow"]) == ("1", {"version": "2", "sample": 0.2})
    assert record["updated_by"] == "unauthenticated@testclient"
    assert client.get(ALIAS).json()["shadow"] == {"version": "2", "sample": 0.2}
    promoted = client.put(ALIAS, json={"version": "3"}).json()
    assert promoted["shadow"] == {"version": "2", "sample": 0.2}
    removed = client.delete(f"{ALIAS}/shadow").json()
    assert removed["shadow"] is None and removed["version"] == "3"
    assert removed["history"][0]["shadow"] == {"version": "2", "sample": 0.2}


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"version": "2", "sample": 0}, 400, "sample must be at least 1e-06 and at most 1"),
        ({"version": "2", "sample": 2}, 400, "sample must be at least 1e-06 and at most 1"),
        ({"version": "1", "sample": 0.5}, 409, "already serves version '1'"),
        ({"version": "9", "sample": 0.5}, 404, "'9'"),
        ({"version": "2", "rate": 0.5}, 422, "rate"),
    ],
)
def test_an_invalid_shadow_is_refused(
    client: TestClient, body: dict[str, Any], status: int, error: str
) -> None:
    before = client.get(ALIAS).json()
    response = client.put(f"{ALIAS}/shadow", json=body)
    assert response.status_code == status, response.text
    assert error in response.json()["error"]
    assert client.get(ALIAS).json() == before
