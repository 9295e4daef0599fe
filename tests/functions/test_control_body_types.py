"""Control-plane bodies are typed as the OpenAPI document says. Numbers are JSON numbers:
`true`, `false` and numeric strings are a 422 naming the field (lax pydantic took `true` for 1,
so `{"sample": true}` captured every request, and `{"weight": "0.5"}` split an alias 50/50).
A body is JSON by its Content-Type, as FastAPI reads it: another type is the 415."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

ALIAS = "/control/models/iris/aliases/staging"


@pytest.fixture
def client(tmp_path: Any) -> TestClient:
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, "iris", version), onnx)
    registry.set_alias("iris", "staging", "1")
    return TestClient(create_app(registry.store))


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/control/models/iris/capture", {"sample": True}, "sample"),
        ("PUT", "/control/models/iris/capture", {"sample": False}, "sample"),
        ("PUT", "/control/models/iris/capture", {"sample": "0.5"}, "sample"),
        ("PUT", f"{ALIAS}/shadow", {"version": "2", "sample": True}, "sample"),
        ("PUT", ALIAS, {"version": "2", "weight": "0.5"}, "weight"),
        ("PUT", ALIAS, {"weights": {"1": True, "2": 0.0}}, "weights"),
        ("POST", "/control/models/iris/compare",
         {"a": "1", "b": "2", "data": "batch/iris/input/x.csv", "max_rows": True}, "max_rows"),
    ],
)  # fmt: skip
def test_a_bool_or_a_string_for_a_number_is_refused(
    client: TestClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    answer = client.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["error"]
    assert client.get("/control/models/iris/capture").json()["sample"] == 0  # nothing changed
    assert client.get(ALIAS).json()["version"] == "1"


def test_numbers_still_pass(client: TestClient) -> None:
    assert client.put("/control/models/iris/capture", json={"sample": 1}).status_code == 200
    assert client.put(ALIAS, json={"version": "2", "weight": 0.5}).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["text/json", "application/x-ndjson", "application/jsonlines", "text/plain"]
)
def test_a_json_body_sent_as_another_type_is_the_415(client: TestClient, content_type: str) -> None:
    """Types that merely hold 'json' were a 422 'Input should be a valid dictionary', as FastAPI
    parses only application/json and application/*+json."""
    answer = client.put(ALIAS, content='{"version": "2"}', headers={"content-type": content_type})
    assert answer.status_code == 415
    assert answer.json() == {
        "error": f"send the body as JSON with 'Content-Type: application/json' ('{content_type}')"
    }
    sent = client.put(
        ALIAS, content='{"version": "2"}', headers={"content-type": "application/merge-patch+json"}
    )
    assert sent.status_code == 200, sent.text


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/control/models/nosuch/aliases/qa/shadow", "model 'nosuch'"),  # or of its version
        ("/control/models/iris/aliases/qa/shadow", "alias 'qa' of model 'iris' not found"),
    ],
)
def test_a_shadow_of_an_unknown_model_or_alias_is_a_404(
    client: TestClient, method: str, path: str, said: str
) -> None:
    """Was a 409 'promote a version to it first', for a model that does not exist too."""
    body = {"json": {"version": "2"}} if method == "PUT" else {}
    answer = client.request(method, path, **body)
    assert answer.status_code == 404, answer.text
    assert said in answer.json()["error"] and "not found" in answer.json()["error"]


def test_404s_of_a_deleted_version_and_of_an_unknown_model_say_what_reading_says(
    tmp_path: Any,
) -> None:
    """Deleting a version twice said 'not found' where GET said 'was deleted (pruned)';
    deleting an alias of an unknown model named the alias, where GET named the model."""
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    for version in ("1", "2", "3"):  # 2: neither the latest nor an alias's, so it may go
        registry.publish(onnx_factory.manifest_for(onnx, "iris", version), onnx)
    client = TestClient(create_app(registry.store))
    assert client.delete("/control/models/iris/versions/2").status_code == 200
    again = client.delete("/control/models/iris/versions/2")
    read = client.get("/control/models/iris/versions/2")
    assert again.status_code == read.status_code == 404
    assert again.json() == read.json() and "was deleted (pruned" in read.json()["error"]
    gone = client.delete("/control/models/nosuch/aliases/qa")
    assert (gone.status_code, gone.json()) == (
        404,
        client.get("/control/models/nosuch/aliases/qa").json(),
    )


def test_reads_with_an_etag_answer_their_own_preconditions(client: TestClient) -> None:
    """RFC 9110 13.1: a matching If-None-Match is a 304 with no body, a stale If-Match a 412
    (both were answered 200 with the whole body)."""
    read = client.get(ALIAS)
    etag = read.headers["etag"]
    cached = client.get(ALIAS, headers={"If-None-Match": f'"other", W/{etag}'})
    assert (cached.status_code, cached.content, cached.headers["etag"]) == (304, b"", etag)
    stale = client.get(ALIAS, headers={"If-Match": '"stale"'})
    assert stale.status_code == 412 and etag in stale.json()["error"]
    assert client.get(ALIAS, headers={"If-Match": etag}).json() == read.json()
    assert client.get(ALIAS, headers={"If-None-Match": '"other"'}).status_code == 200
