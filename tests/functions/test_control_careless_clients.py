"""The control plane as a careless client meets it, through the Lambda handler with the golden
API Gateway v2 events (events/control/) reshaped: a trailing slash, and JSON bodies that no
parser takes (nested too deep, not UTF-8) get the same answer shape as every other request."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.control.app import create_app
from functions.control.handler import _PathAsGiven
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

EVENTS = Path(__file__).resolve().parents[2] / "events" / "control"
MODEL = "digits-mlp"


@pytest.fixture(scope="module")
def handler(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("careless")
    registry = Registry(LocalStore(root / "store"))
    onnx = onnx_factory.linear_classifier(root / "linear.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, MODEL, version), onnx)
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return _PathAsGiven(create_app(registry.store), lifespan="off")


def golden(name: str, path: str | None = None, body: bytes | None = None) -> dict[str, Any]:
    """A golden event, its path (and `pathParameters.proxy`) or its body replaced."""
    event: dict[str, Any] = copy.deepcopy(json.loads((EVENTS / name).read_text()))
    if path is not None:
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"proxy": path.removeprefix("/control/")}
    if body is not None:
        event["body"], event["isBase64Encoded"] = body.decode("latin-1"), False
        if not body.isascii():  # bytes that are no UTF-8 text come base64-encoded
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def answer(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = handler(event, None)
    body = orjson.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], response["headers"], body


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("models_list.json", "/control/models/"),
        ("alias_get.json", f"/control/models/{MODEL}/aliases/production/"),
    ],
)
def test_a_trailing_slash_is_the_same_route_not_a_redirect_to_another_scheme(
    handler: Any, name: str, path: str
) -> None:
    """Starlette redirected `/control/models/` (307, no body) to `https://<host>/control/models`:
    on `aiaas serve` (plain HTTP) that URL does not answer, and behind a custom domain's base
    path it names another API. The gateway routes `/models/x/predict/` as its route: so here."""
    plain = answer(handler, golden(name))
    slashed = answer(handler, golden(name, path))
    assert slashed[0] == plain[0] == 200
    assert "location" not in slashed[1]
    assert slashed[2] == plain[2]


def test_a_put_with_a_trailing_slash_moves_the_alias(handler: Any) -> None:
    path = f"/control/models/{MODEL}/aliases/canary/"
    status, _, body = answer(handler, golden("alias_promote.json", path, b'{"version": "2"}'))
    assert (status, body["alias"], body["version"]) == (201, "canary", "2")


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b'{"version": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
        (b'{"version": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_a_body_no_json_parser_takes_is_named_as_such(handler: Any, body: bytes, said: str) -> None:
    """FastAPI answered both with a 400 "There was an error parsing the body": not what to fix,
    and not the shape the control plane gives every other body that is not JSON."""
    path = f"/control/models/{MODEL}/aliases/production"
    status, _, answered = answer(handler, golden("alias_promote.json", path, body))
    assert status == 400  # as the data plane answers a body no parser takes
    assert answered["error"].startswith("invalid request: body is not valid JSON: ")
    assert said in answered["error"]


def test_every_route_that_answers_415_documents_it_in_its_openapi(handler: Any) -> None:
    """A JSON body sent as anything but JSON is a 415 `{"error": ...}`; /openapi.json listed no
    415 on any route, so a client generated from it had no type for that answer."""
    path = f"/control/models/{MODEL}/aliases/production"
    event = golden("alias_promote.json", path, b'{"version": "2"}')
    event["headers"]["content-type"] = "text/plain"
    status, _, body = answer(handler, event)
    assert (status, list(body)) == (415, ["error"])
    _, _, spec = answer(handler, golden("models_list.json", "/openapi.json"))
    with_json_body = {
        (method, path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    }
    assert ("put", "/control/models/{name}/aliases/{alias}") in with_json_body
    # 8: a rollout's abort takes one too (its optional `reason`)
    assert len([path for _, path in with_json_body if path.startswith("/control/")]) == 8
    for method, path in with_json_body:
        documented = spec["paths"][path][method]["responses"].get("415", {})
        assert documented["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }, (method, path)
    upload = spec["paths"]["/control/batch/{model}/jobs/{file}"]["put"]["responses"]
    # its body is the file itself, of any type: its 415 is only for an encoding not taken
    assert upload["415"]["description"] == "a Content-Encoding other than gzip or deflate"


def with_query(name: str, query: str) -> dict[str, Any]:
    event = golden(name)
    event["rawQueryString"] = query
    event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    return event


@pytest.mark.parametrize(
    ("name", "query", "said"),
    [
        (
            "models_list.json",
            "limt=1",
            "unknown query parameter 'limt': GET /control/models takes only after, limit",
        ),
        (
            "alias_get.json",
            "version=2&x=1",
            "unknown query parameters 'version', 'x': GET /control/models/digits-mlp/aliases/"
            "production takes no query parameters",
        ),
    ],
)
def test_a_query_parameter_no_route_takes_is_400_not_ignored(
    handler: Any, name: str, query: str, said: str
) -> None:
    """`?limt=1` listed 100 models as if unasked, where the data plane's routes answer a 400
    naming the parameter: a parameter ignored answers a question not asked."""
    status, headers, body = answer(handler, with_query(name, query))
    assert (status, headers["content-type"], body) == (400, "application/json", {"error": said})
    status, _, body = answer(handler, with_query("models_list.json", "limit=1"))
    assert (status, len(body["models"])) == (200, 1)
