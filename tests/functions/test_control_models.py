"""Control plane, registry side: list models and versions, promote, roll back, delete aliases.

Runs the real app over both stores (a directory and S3 on moto's server) through FastAPI's test
client; `test_control_handler.py` drives the same app as Lambda does, through Mangum.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from tests import onnx_factory
from tests.publishing import module_store

MODEL = "iris"


def publish_versions(store: ObjectStore, onnx: Path, *versions: str) -> Registry:
    registry = Registry(store)
    for version in versions:
        registry.publish(onnx_factory.manifest_for(onnx, MODEL, version), onnx)
    return registry


def client_once(
    request: pytest.FixtureRequest, factory: pytest.TempPathFactory, versions: str = "123"
) -> TestClient:
    """`client` (or with other `versions`) on a `module_store`, for a module-scoped fixture
    shared by the tests whose request is refused (~1 s of moto a test to publish again): a
    refusal writes nothing."""
    work = factory.mktemp("refused")
    store = module_store(request, work)
    onnx = onnx_factory.linear_classifier(work / "linear.onnx")
    publish_versions(store, onnx, *versions).set_alias(MODEL, "production", "1", actor="ci")
    return TestClient(create_app(store))


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TestClient:
    return client_once(request, tmp_path_factory)


def test_lists_models_with_version_counts_and_aliases(client: TestClient) -> None:
    response = client.get("/control/models")
    assert response.status_code == 200
    assert response.json() == {
        "models": [
            {
                "name": MODEL,
                "versions": 3,
                "latest": "3",
                "aliases": {"production": "1"},
                "alias_targets": {"production": {"version": "1", "weights": None, "shadow": None}},
                "problems": [],
            }
        ],
        "next": None,
    }


def test_model_detail_and_a_versions_manifest(client: TestClient) -> None:
    detail = client.get(f"/control/models/{MODEL}")
    assert detail.status_code == 200
    assert detail.json() == {
        "name": MODEL,
        "versions": ["1", "2", "3"],
        "aliases": {"production": "1"},
        "alias_targets": {"production": {"version": "1", "weights": None, "shadow": None}},
        "problems": [],
        "next": None,
    }
    manifest = client.get(f"/control/models/{MODEL}/versions/2")
    assert manifest.status_code == 200
    assert (manifest.json()["name"], manifest.json()["version"]) == (MODEL, "2")
    assert manifest.json()["inputs"][0]["name"] == "x"


def test_promote_records_who_and_when_and_keeps_history(client: TestClient) -> None:
    response = client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "3"})
    assert response.status_code == 200
    record = response.json()
    assert (record["model"], record["alias"], record["version"]) == (MODEL, "production", "3")
    assert record["updated_by"] == "unauthenticated@testclient"
    assert record["updated_at"].endswith("Z") or "+00:00" in record["updated_at"]
    assert [h["version"] for h in record["history"]] == ["1"]
    assert record["history"][0]["updated_by"] == "ci"
    assert client.get(f"/control/models/{MODEL}").json()["aliases"] == {"production": "3"}


def test_rollback_returns_to_the_previous_version(client: TestClient) -> None:
    client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "2"})
    client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "3"})
    response = client.post(f"/control/models/{MODEL}/aliases/production/rollback")
    assert response.status_code == 200
    assert response.json()["version"] == "2"
    assert [h["version"] for h in response.json()["history"]] == ["3", "2", "1"]
    # A roll back is itself a change that can be undone, but within a minute only by naming
    # the version: a second plain one put 3 back. By the same caller it is a retry (its
    # answer lost): the record as it stands, nothing moved; by another, a 409
    # (test_control_handler.py).
    again = client.post(f"/control/models/{MODEL}/aliases/production/rollback")
    assert (again.status_code, again.json()) == (200, response.json()), again.text
    assert response.json()["rolled_back"] is True
    undone = client.post(f"/control/models/{MODEL}/aliases/production/rollback?to=3")
    assert (undone.status_code, undone.json()["version"]) == (200, "3")


def test_rollback_with_no_earlier_version_is_a_conflict(client: TestClient) -> None:
    client.put(f"/control/models/{MODEL}/aliases/staging", json={"version": "2"})
    response = client.post(f"/control/models/{MODEL}/aliases/staging/rollback")
    assert response.status_code == 409
    assert response.json() == {
        "error": "alias 'staging' of model 'iris' has pointed only at version '2'; "
        "there is nothing to roll back to"
    }


def test_rollback_to_an_earlier_version_of_the_alias(client: TestClient) -> None:
    for version in ("2", "3"):
        client.put(f"/control/models/{MODEL}/aliases/production", json={"version": version})
    response = client.post(f"/control/models/{MODEL}/aliases/production/rollback?to=1")
    assert (response.status_code, response.json()["version"]) == (200, "1")
    never = client.post(f"/control/models/{MODEL}/aliases/staging/rollback?to=1")
    assert (never.status_code, never.json()) == (
        404,
        {"error": "alias 'staging' of model 'iris' not found"},
    )
    client.put(f"/control/models/{MODEL}/aliases/staging", json={"version": "2"})
    client.put(f"/control/models/{MODEL}/aliases/staging", json={"version": "3"})
    unknown = client.post(f"/control/models/{MODEL}/aliases/staging/rollback?to=1")
    assert (unknown.status_code, unknown.json()) == (
        409,
        {
            "error": "alias 'staging' of model 'iris' never pointed at version '1' (it pointed "
            "at 2); to move it to a new version, promote that version"
        },
    )


def test_rollback_reads_to_from_its_body_too(client: TestClient) -> None:
    """`{"to": "1"}` in the body was ignored (any body was, not JSON too) and the alias went
    to the version before: 3 -> 2, the one the caller meant to leave."""
    for version in ("2", "3"):
        client.put(f"/control/models/{MODEL}/aliases/production", json={"version": version})
    url = f"/control/models/{MODEL}/aliases/production/rollback"
    response = client.post(url, json={"to": "1"})
    assert (response.status_code, response.json()["version"]) == (200, "1")
    assert client.post(url, content=b"to=1").status_code == 415  # no JSON: refused, not ignored
    assert client.post(url, json={"version": "2"}).status_code == 422  # no such field
    both = client.post(f"{url}?to=3", json={"to": "2"})
    assert (both.status_code, both.json()) == (
        400,
        {"error": "rollback names two versions: ?to=3 and a body's to '2'"},
    )
    assert client.get(f"/control/models/{MODEL}/aliases/production").json()["version"] == "1"


def test_get_and_delete_an_alias(client: TestClient) -> None:
    record = client.get(f"/control/models/{MODEL}/aliases/production")
    assert record.status_code == 200
    assert (record.json()["version"], record.json()["updated_by"]) == ("1", "ci")
    deleted = client.delete(f"/control/models/{MODEL}/aliases/production?force=true")
    assert (deleted.status_code, deleted.json()) == (200, {"deleted": "iris@production"})
    missing = client.get(f"/control/models/{MODEL}/aliases/production")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("alias 'production' of model 'iris' was deleted by")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/control/models/nope", None, 404, "model 'nope' not found"),
        (
            "GET",
            "/control/models/iris/versions/9",
            None,
            404,
            "version '9' of model 'iris' not found",
        ),
        ("GET", "/control/models/nope/aliases/production", None, 404, "model 'nope' not found"),
        (
            "PUT",
            "/control/models/iris/aliases/production",
            {"version": "9"},
            404,
            "version '9' of model 'iris' not found",
        ),
        (
            "DELETE",
            "/control/models/iris/aliases/canary",
            None,
            404,
            "alias 'canary' of model 'iris' not found",
        ),
        (
            "PUT",
            "/control/models/iris/aliases/Prod!",
            {"version": "2"},
            400,
            "invalid alias 'Prod!': use 1-32 characters of a-z, 0-9, '-', '_', starting with a letter",
        ),
        (
            "PUT",
            "/control/models/iris/aliases/production",
            {"version": "../1"},
            400,
            "invalid version '../1': use 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', starting and ending alphanumeric",
        ),
        (
            "PUT",
            "/control/models/iris/aliases/production",
            {},
            422,
            "invalid request: body: Value error, give either version (and optionally weight) "
            "or weights",
        ),
        (
            "PUT",
            "/control/models/iris/aliases/production",
            {"version": "2", "by": "me"},
            422,
            "invalid request: by: Extra inputs are not permitted",
        ),
        (
            "POST",
            "/control/models/iris",
            None,
            405,
            "POST is not allowed on /control/models/iris; use GET, HEAD",
        ),
        (
            "GET",
            "/control/nothing-here",
            None,
            404,
            "no route for GET /control/nothing-here (see /docs for the routes)",
        ),
    ],
)
def test_errors_name_what_to_fix(
    refusing: TestClient, method: str, path: str, body: object, status: int, error: str
) -> None:
    response = refusing.request(method, path, json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}
    assert refusing.get(f"/control/models/{MODEL}/aliases/production").json()["version"] == "1"


def test_openapi_documents_every_control_route(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert 'data-openapi="openapi.json"' in docs.text
    spec = client.get("/openapi.json").json()
    # (the data plane's routes are there too: tests/functions/test_api_document.py)
    assert {path for path in spec["paths"] if path.startswith("/control/")} == {
        "/control/models",
        "/control/models/{name}",
        "/control/models/{name}/versions/{version}",
        "/control/models/{name}/versions/{version}/card",
        "/control/models/{name}/versions/{version}/card/{file}",
        "/control/models/{name}/aliases/{alias}",
        "/control/models/{name}/aliases/{alias}/rollback",
        "/control/models/{name}/aliases/{alias}/shadow",
        "/control/models/{name}/capture",
        "/control/models/{name}/compare",
        "/control/models/{name}/rollouts",
        "/control/models/{name}/rollouts/{alias}",
        "/control/models/{name}/rollouts/{alias}/abort",
        "/control/batch/{model}/jobs",
        "/control/batch/{model}/jobs/{file}",
    }


def test_rollback_to_the_version_the_alias_points_at_is_unchanged(client: TestClient) -> None:
    """As a PUT of the version it points at (docs/rollout.md): 200, the record and ETag it
    had, nothing written; it was a 409 "already points at version '2'" (leftovers6 4)."""
    client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "2"})
    before = client.get(f"/control/models/{MODEL}/aliases/production")
    same = client.post(f"/control/models/{MODEL}/aliases/production/rollback?to=2")
    assert (same.status_code, same.json()) == (200, before.json()), same.text
    assert same.headers["etag"] == before.headers["etag"]
    put = client.put(f"/control/models/{MODEL}/aliases/production", json={"version": "2"})
    assert (put.status_code, put.json()) == (200, before.json())
    # Where it has pointed at no other version, too: nothing to roll back, nothing asked.
    client.put(f"/control/models/{MODEL}/aliases/staging", json={"version": "3"})
    alone = client.post(f"/control/models/{MODEL}/aliases/staging/rollback?to=3")
    assert (alone.status_code, alone.json()["version"], alone.json()["history"]) == (200, "3", [])


def test_model_lists_name_a_split_alias_s_weights_and_shadow(
    client: TestClient, store: ObjectStore
) -> None:
    """`aliases` names the main version only: a script reading the list saw production on 1
    while 30% of its requests went to 2 and a shadow got copies (an older release's weighted
    alias and shadow included); `alias_targets` holds the whole target, as `aiaas models
    --json` does."""
    registry = Registry(store)
    registry.set_alias(MODEL, "production", "2", weight=0.3, actor="ci")
    registry.set_shadow(MODEL, "production", "3", 0.5, actor="ci")
    want = {
        "version": "1",
        "weights": {"1": 0.7, "2": 0.3},
        "shadow": {"version": "3", "sample": 0.5},
    }
    listed = client.get("/control/models").json()["models"][0]
    assert listed["aliases"] == {"production": "1"}
    assert listed["alias_targets"] == {"production": want}
    detail = client.get(f"/control/models/{MODEL}").json()
    assert detail["alias_targets"] == {"production": want}
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "alias_targets" in schema["ModelSummary"]["properties"]
