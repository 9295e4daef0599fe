"""Control plane: `PUT .../aliases/{alias}` with a weight (or explicit weights) splits traffic,
records it like any move, and refuses a split it cannot serve with a 4xx `{"error"}` saying why.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.functions.test_control_models import MODEL, client_once

ALIAS = f"/control/models/{MODEL}/aliases/production"


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TestClient:
    """`client` made once per store for the 24 refused splits: each checks the alias's record
    is as it was."""
    return client_once(request, tmp_path_factory)


def test_a_weight_sends_that_share_to_the_version(client: TestClient) -> None:
    response = client.put(ALIAS, json={"version": "2", "weight": 0.1})
    assert response.status_code == 200
    record = response.json()
    assert (record["version"], record["weights"]) == ("1", {"1": 0.9, "2": 0.1})
    assert record["updated_by"] == "unauthenticated@testclient"
    assert client.get(ALIAS).json()["weights"] == {"1": 0.9, "2": 0.1}
    full = client.put(ALIAS, json={"version": "2"}).json()
    assert (full["version"], full["weights"]) == ("2", None)
    assert [(h["version"], h["weights"]) for h in full["history"]] == [
        ("1", {"1": 0.9, "2": 0.1}),
        ("1", None),
    ]


def test_weights_with_a_third_version_while_a_split_is_on_are_a_conflict(
    client: TestClient,
) -> None:
    """The `version` + `weight` form refused it; the `weights` form replaced canary 2 by 3,
    its callers moved with no rollback point between (docs/rollout.md says 409)."""
    assert client.put(ALIAS, json={"version": "2", "weight": 0.2}).status_code == 200
    third = client.put(ALIAS, json={"weights": {"1": 0.9, "3": 0.1}})
    assert third.status_code == 409
    assert "already splits traffic 1 (80%) + 2 (20%)" in third.json()["error"]
    assert client.get(ALIAS).json()["weights"] == {"1": 0.8, "2": 0.2}
    moved = client.put(ALIAS, json={"weights": {"1": 0.5, "2": 0.5}})  # the same two: a move
    assert (moved.status_code, moved.json()["weights"]) == (200, {"1": 0.5, "2": 0.5})


def test_explicit_weights_and_rollback(client: TestClient) -> None:
    response = client.put(ALIAS, json={"weights": {"1": 0.75, "3": 0.25}})
    assert (response.status_code, response.json()["weights"]) == (200, {"1": 0.75, "3": 0.25})
    rolled = client.post(f"{ALIAS}/rollback")
    assert (rolled.status_code, rolled.json()["version"], rolled.json()["weights"]) == (
        200,
        "1",
        None,
    )


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"version": "2", "weight": 1.5},
            400,
            "weight must be from 1e-06 to 0.999999 (6 decimals are kept; 0.1 sends 10% of requests to the "
            "version; to send all of them, promote it without a weight); got 1.5",
        ),
        ({"version": "2", "weight": 0}, 400, "weight must be from 1e-06 to 0.999999"),
        # stored rounded to 0 and 1: the record was written, and refused by every reader (503)
        ({"version": "2", "weight": 1e-300}, 400, "weight must be from 1e-06 to 0.999999"),
        ({"version": "2", "weight": 0.99999999999}, 400, "weight must be from 1e-06 to 0.999999"),
        (
            {"weights": {"1": 0.5, "2": 0.25, "3": 0.25}},
            400,
            "an alias splits traffic between at most 2 versions; got 3 (1, 2, 3)",
        ),
        ({"weights": {"1": 0.5, "2": 0.6}}, 400, "weights must add up to 1"),
        ({"version": "9", "weight": 0.1}, 404, "version '9' of model 'iris' not found"),
        ({"weights": {"1": 0.9, "9": 0.1}}, 404, "version '9' of model 'iris' not found"),
        ({"version": "1", "weight": 0.1}, 409, "already points at version '1'"),
        ({"weight": 0.1}, 422, "give either version (and optionally weight) or weights"),
        ({"version": "2", "weights": {"2": 1}}, 422, "give either version"),
        ({"version": "2", "weight": "lots"}, 422, "weight: Input should be a valid number"),
    ],
)
def test_a_split_that_cannot_be_served_is_refused(
    refusing: TestClient, body: dict[str, Any], status: int, error: str
) -> None:
    response = refusing.put(ALIAS, json=body)
    assert response.status_code == status
    assert error in response.json()["error"]
    record = refusing.get(ALIAS).json()
    assert (record["version"], record["weights"], len(record["history"])) == ("1", None, 0)


def test_setting_what_the_alias_already_holds_is_a_no_op(client: TestClient) -> None:
    for body in (
        {"version": "2", "weight": 0.1},
        {"weights": {"1": 0.9, "2": 0.1}},
        {"version": "1"},
    ):
        first = client.put(ALIAS, json=body)
        again = client.put(ALIAS, json=body)  # a retried request, or a second operator
        assert again.status_code == 200
        assert again.json() == first.json() and again.headers["ETag"] == first.headers["ETag"]
        got = client.get(ALIAS)
        assert got.headers["ETag"] == first.headers["ETag"]
        assert len(got.json()["history"]) == len(first.json()["history"])
    assert [h["version"] for h in got.json()["history"]] == ["1", "1"]  # split, then the first


def test_weights_may_create_a_split_alias_a_weight_may_not(client: TestClient) -> None:
    """As docs/rollout.md says: `weights` names both versions; a `weight` splits with the
    version the alias points at, and a new alias points at none."""
    fresh = f"/control/models/{MODEL}/aliases/fresh"
    created = client.put(fresh, json={"weights": {"1": 0.5, "2": 0.5}})
    assert created.status_code == 201, created.text
    assert created.json()["weights"] == {"1": 0.5, "2": 0.5}
    refused = client.put(f"{fresh}-2", json={"version": "2", "weight": 0.5})
    assert refused.status_code == 409 and "points at no version yet" in refused.json()["error"]


def test_rolling_back_a_split_that_left_out_the_version_goes_back_to_it(
    client: TestClient,
) -> None:
    """A `weights` split may name neither version the alias pointed at; its rollback ended the
    split at its main version, one that had never served alone, at 100% (3 -> 2 + 1 -> 2)."""
    assert client.put(ALIAS, json={"version": "3"}).status_code == 200
    split = client.put(ALIAS, json={"weights": {"2": 0.5, "1": 0.5}}).json()
    assert (split["version"], split["weights"]) == ("2", {"2": 0.5, "1": 0.5})
    rolled = client.post(f"{ALIAS}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["weights"]) == ("3", None)
    assert client.get(ALIAS).json()["version"] == "3"
    ramp = client.put(ALIAS, json={"version": "2", "weight": 0.1})  # a split of the version:
    assert ramp.status_code == 200  # ends at it, as before
    assert client.post(f"{ALIAS}/rollback").json()["version"] == "3"


def test_rolling_back_a_split_restores_the_split_before_it(client: TestClient) -> None:
    """The state before may itself be a split (a deleted alias's): restored as it was, both
    versions kept from a prune meanwhile, not one of the new split's versions at 100%."""
    staging = f"/control/models/{MODEL}/aliases/staging"
    assert client.put(staging, json={"weights": {"1": 0.9, "2": 0.1}}).status_code == 201
    assert client.delete(staging).status_code == 200
    assert client.put(staging, json={"weights": {"3": 0.6, "2": 0.4}}).status_code in (200, 201)
    assert client.put(ALIAS, json={"version": "3"}).status_code == 200  # 1: no other alias
    kept = client.delete(f"/control/models/{MODEL}/versions/1")
    assert kept.status_code == 409 and "@staging rollback target" in kept.json()["error"]
    rolled = client.post(f"{staging}/rollback")
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version"], rolled.json()["weights"]) == ("1", {"1": 0.9, "2": 0.1})
