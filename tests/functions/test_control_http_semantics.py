"""The control plane's HTTP semantics as a client script meets them, through the Lambda handler
(Mangum) with HTTP API v2.0 events, over both stores (a directory and S3 on moto's server):
405 with the right `Allow`, 201 when a PUT creates an alias, and optimistic concurrency on alias
moves (`ETag`, `If-Match`, `If-None-Match: *` -> 412 for the client that lost)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.control.app import create_app
from functions.control.handler import _PathAsGiven
from functions.runtime.registry import Registry
from functions.runtime.store import ObjectStore
from infra.local.gateway import GatewayRequest, build_event
from tests.functions.test_control_models import client_once, publish_versions

ALIASES = "/control/models/iris/aliases"


@pytest.fixture
def handler(store: ObjectStore, classifier_onnx: Path) -> Any:
    registry = publish_versions(store, classifier_onnx, "1", "2", "3")
    registry.set_alias("iris", "production", "1", actor="ci")
    return _PathAsGiven(create_app(store), lifespan="off")


@pytest.fixture(scope="module", params=["local", "s3"])
def reading(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """`handler`, made once per store for the 18 tests that move nothing (a 405, a HEAD beside
    its GET): three publishes a test on moto, ~1 s, for requests that write no alias."""
    app = client_once(request, tmp_path_factory).app
    return _PathAsGiven(app, lifespan="off")


def send(
    handler: Any, method: str, path: str, body: Any = None, query: str = "", **headers: str
) -> tuple[int, dict[str, str], Any]:
    data = orjson.dumps(body) if body is not None else b""
    sent = [("content-type", "application/json")] if body is not None else []
    sent += [(k.replace("_", "-"), v) for k, v in headers.items()]
    event = build_event(
        GatewayRequest(method, path, query, sent, data), "ANY", "/control/{proxy+}", {}
    )
    response = handler(event, None)
    return response["statusCode"], response["headers"], orjson.loads(response["body"])


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", f"{ALIASES}/production", "DELETE, GET, HEAD, PUT"),
        ("POST", f"{ALIASES}/production", "DELETE, GET, HEAD, PUT"),
        ("GET", f"{ALIASES}/production/shadow", "DELETE, PUT"),
        ("POST", "/control/models", "GET, HEAD"),
        ("DELETE", "/control/models/iris/capture", None),  # allowed: not a 405
    ],
)
def test_a_405_names_every_method_the_path_takes(
    reading: Any, method: str, path: str, allowed: str | None
) -> None:
    """Starlette answered with the methods of the first route whose path matched: `Allow: GET`
    for an alias that also takes PUT and DELETE, so a client believed it read-only."""
    status, headers, body = send(reading, method, path)
    if allowed is None:
        assert status != 405
        return
    assert (status, headers.get("allow")) == (405, allowed)
    assert body == {"error": f"{method} is not allowed on {path}; use {allowed}"}


def test_a_put_that_creates_an_alias_is_a_201_and_one_that_moves_it_a_200(handler: Any) -> None:
    status, headers, body = send(handler, "PUT", f"{ALIASES}/staging", {"version": "2"})
    assert (status, body["version"], body["history"]) == (201, "2", [])
    assert headers["location"] == "staging"  # relative: the URL the client sent, prefix and all
    status, _, body = send(handler, "PUT", f"{ALIASES}/staging", {"version": "3"})
    assert (status, [h["version"] for h in body["history"]]) == (200, ["2"])


def test_an_alias_carries_an_etag_that_changes_with_every_move(handler: Any) -> None:
    _, read, _ = send(handler, "GET", f"{ALIASES}/production")
    _, moved, _ = send(handler, "PUT", f"{ALIASES}/production", {"version": "2"})
    _, again, _ = send(handler, "GET", f"{ALIASES}/production")
    assert read["etag"].startswith('"') and read["etag"] != moved["etag"] == again["etag"]


def test_if_match_makes_the_client_that_read_an_old_alias_lose_with_a_412(handler: Any) -> None:
    _, headers, _ = send(handler, "GET", f"{ALIASES}/production")
    seen = headers["etag"]
    status, _, _ = send(handler, "PUT", f"{ALIASES}/production", {"version": "2"}, if_match=seen)
    assert status == 200
    status, _, body = send(handler, "PUT", f"{ALIASES}/production", {"version": "3"}, if_match=seen)
    assert status == 412
    assert body["error"].startswith(
        "alias 'production' of model 'iris' changed since you read it: it now points at "
        "version '2' (moved by unauthenticated@127.0.0.1 at "
    )
    assert body["error"].endswith("read it again (GET its ETag) and retry")
    _, _, now = send(handler, "GET", f"{ALIASES}/production")
    assert (now["version"], [h["version"] for h in now["history"]]) == ("2", ["1"])


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PUT", "", {"weights": {"1": 0.5, "2": 0.5}}),
        ("PUT", "/shadow", {"version": "3"}),
        ("DELETE", "/shadow", None),
        ("POST", "/rollback", None),
    ],
)
def test_every_alias_move_honours_if_match(
    handler: Any, method: str, suffix: str, body: Any
) -> None:
    send(handler, "PUT", f"{ALIASES}/production", {"version": "2"})
    before = send(handler, "GET", f"{ALIASES}/production")[2]
    path = f"{ALIASES}/production{suffix}"
    status, _, _ = send(handler, method, path, body, if_match='"0000"')
    assert status == 412
    assert send(handler, "GET", f"{ALIASES}/production")[2] == before  # nothing moved
    etag = send(handler, "GET", f"{ALIASES}/production")[1]["etag"]
    assert send(handler, method, path, body, if_match=etag)[0] == 200


def test_a_delete_with_an_old_etag_is_refused_and_deletes_nothing(handler: Any) -> None:
    path = f"{ALIASES}/production"
    seen = send(handler, "GET", path)[1]["etag"]
    send(handler, "PUT", path, {"version": "2"})
    status, _, body = send(handler, "DELETE", path, query="force=true", if_match=seen)
    assert status == 412 and "changed since you read it" in body["error"]
    assert send(handler, "GET", path)[2]["version"] == "2"
    now = send(handler, "GET", path)[1]["etag"]
    assert send(handler, "DELETE", path, query="force=true", if_match=now)[:1] == (200,)
    assert send(handler, "GET", path)[0] == 404


def test_a_move_between_the_read_and_the_delete_fails_the_delete(
    handler: Any, store: ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer moves the alias just after the delete read it (and found its ETag
    current): the delete is conditional on the version read, so it is refused, not applied."""
    path = f"{ALIASES}/production"
    etag = send(handler, "GET", path)[1]["etag"]
    read = store.get_bytes

    def read_then_moved(key: str) -> bytes:
        data = read(key)
        if key.endswith("aliases/production.json"):
            monkeypatch.undo()  # once: the move below reads the store too
            Registry(store).set_alias("iris", "production", "3", actor="other")
        return data

    monkeypatch.setattr(store, "get_bytes", read_then_moved)
    status, _, body = send(handler, "DELETE", path, query="force=true", if_match=etag)
    assert (status, body["error"]) == (
        412,
        "alias 'production' of model 'iris' changed as it was being deleted; read it again "
        "(GET its ETag) and retry",
    )
    assert send(handler, "GET", path)[2]["version"] == "3"


def test_if_none_match_star_creates_an_alias_only_once(handler: Any) -> None:
    path = f"{ALIASES}/canary"
    assert send(handler, "PUT", path, {"version": "2"}, if_none_match="*")[0] == 201
    status, _, body = send(handler, "PUT", path, {"version": "3"}, if_none_match="*")
    assert status == 412
    assert body["error"].startswith("alias 'canary' of model 'iris' already exists")
    assert send(handler, "GET", path)[2]["version"] == "2"
    status, _, body = send(handler, "PUT", f"{ALIASES}/absent", {"version": "2"}, if_match="*")
    assert (status, body) == (412, {"error": "alias 'absent' of model 'iris' does not exist"})


def test_two_clients_moving_one_alias_at_once_one_wins_and_the_other_is_told(
    handler: Any, store: ObjectStore
) -> None:
    """Both read the alias, then PUT with its ETag at once, each through a Lambda container of
    its own: the compare-and-swap lets one through; the other gets a 412 naming who moved it,
    and the history keeps both the winner's move and the version before."""
    containers = [handler, _PathAsGiven(create_app(store), lifespan="off")]
    etag = send(handler, "GET", f"{ALIASES}/production")[1]["etag"]
    start = threading.Barrier(2)

    def move(container: Any, version: str) -> tuple[int, dict[str, str], Any]:
        loop = asyncio.new_event_loop()  # each Lambda container has its own
        asyncio.set_event_loop(loop)
        start.wait()
        try:
            path = f"{ALIASES}/production"
            return send(container, "PUT", path, {"version": version}, if_match=etag)
        finally:
            loop.close()

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(move, containers, ["2", "3"]))
    assert sorted(status for status, _, _ in answers) == [200, 412]
    won = next(body for status, _, body in answers if status == 200)
    lost = next(body for status, _, body in answers if status == 412)
    assert f"it now points at version {won['version']!r}" in lost["error"]
    now = send(handler, "GET", f"{ALIASES}/production")[2]
    assert now["version"] == won["version"]
    assert [h["version"] for h in now["history"]] == ["1"]


@pytest.mark.parametrize(
    "path", ["/control/models", f"{ALIASES}/production", "/control/models/iris/versions/2"]
)
def test_head_answers_a_get_route_with_its_headers_and_no_body(reading: Any, path: str) -> None:
    """A monitor or a client checking an alias's ETag sends HEAD: it was a 405 on every route."""
    got_status, got, _ = send(reading, "GET", path)
    event = build_event(GatewayRequest("HEAD", path, "", [], b""), "ANY", "/control/{proxy+}", {})
    response = reading(event, None)
    assert (response["statusCode"], response["body"]) == (got_status, "")
    for name in ("content-type", "content-length", "etag"):
        assert response["headers"].get(name) == got.get(name), name


def test_head_on_what_is_not_there_is_the_gets_status_without_a_body(reading: Any) -> None:
    for path, status in (("/control/models/nope/versions/1", 404), ("/control/nothing", 404)):
        event = build_event(
            GatewayRequest("HEAD", path, "", [], b""), "ANY", "/control/{proxy+}", {}
        )
        response = reading(event, None)
        assert (response["statusCode"], response["body"]) == (status, ""), path
