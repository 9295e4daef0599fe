"""The control plane as Lambda runs it: Mangum over complete HTTP API v2.0 events.

Who moved an alias comes from API Gateway's authorizer context (IAM or JWT), never from headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.runtime import names
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler
from infra.local.gateway import GatewayRequest, build_event
from tests import onnx_factory

ALIAS = "/control/models/iris/aliases/production"


@pytest.fixture
def handler(tmp_path: Path, classifier_onnx: Path) -> Any:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        registry.publish(
            onnx_factory.manifest_for(classifier_onnx, "iris", version), classifier_onnx
        )
    registry.set_alias("iris", "production", "1", actor="ci")
    return load_handler(
        "functions.control.handler.handler", {"AIAAS_STORE": str(tmp_path / "store")}
    )


def event(
    method: str, path: str, body: Any = None, authorizer: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = orjson.dumps(body) if body is not None else b""
    headers = [("content-type", "application/json"), ("x-aiaas-actor", "mallory")]
    built = build_event(
        GatewayRequest(method, path, "", headers, data),
        "ANY",
        "/control/{proxy+}",
        {"proxy": path[9:]},
    )
    if authorizer is not None:
        built["requestContext"]["authorizer"] = authorizer
    return built


def call(handler: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    response = handler(event(*args, **kwargs), None)
    return response["statusCode"], orjson.loads(response["body"])


IAM = {"iam": {"userArn": "arn:aws:iam::123456789012:user/alice", "accountId": "123456789012"}}
JWT = {
    "jwt": {
        "claims": {
            "sub": "b0b",
            "email": "bob@example.com",
            "iss": "https://issuer.example",
            "email_verified": "true",
        },
        "scopes": None,
    }
}


def jwt(**claims: str) -> dict[str, Any]:
    return {"jwt": {"claims": {"sub": "b0b", "iss": "https://idp", **claims}, "scopes": None}}


@pytest.mark.parametrize(
    ("authorizer", "who"),
    [
        (IAM, "arn:aws:iam::123456789012:user/alice"),
        (JWT, "bob@example.com (https://issuer.example)"),
        ({"lambda": {"principal": "bearer-token-holder"}}, "bearer-token-holder@127.0.0.1"),
        (None, "unauthenticated@127.0.0.1"),
        # An email the issuer has not verified (Cognito lets users change theirs) named the
        # caller as whoever they chose; a claim's newline forged a line of `aiaas versions`.
        (jwt(email="alice@corp.example", email_verified="false"), "b0b (https://idp)"),
        (jwt(email="alice@corp.example"), "b0b (https://idp)"),
        (jwt(username="bob\nalice (https://idp)"), "bob\\nalice (https://idp) (https://idp)"),
        ({"jwt": "a string", "iam": ["a list"]}, "unauthenticated@127.0.0.1"),  # was a 500
        ("an authorizer that is a string", "unauthenticated@127.0.0.1"),
    ],
    ids=[
        "iam",
        "jwt",
        "lambda",
        "none",
        "unverified-email",
        "no-email-verified",
        "control-characters",
        "odd-shapes",
        "string-authorizer",
    ],
)
def test_promote_records_the_authorized_caller(handler: Any, authorizer: Any, who: str) -> None:
    status, body = call(handler, "PUT", ALIAS, {"version": "2"}, authorizer=authorizer)
    assert status == 200
    assert (body["version"], body["updated_by"]) == ("2", who)
    status, body = call(handler, "POST", f"{ALIAS}/rollback", authorizer=authorizer)
    assert (status, body["version"], body["updated_by"]) == (200, "1", who)
    assert [h["version"] for h in body["history"]] == ["2", "1"]


def test_errors_come_back_as_api_gateway_responses(handler: Any) -> None:
    assert call(handler, "GET", "/control/models/nope") == (
        404,
        {"error": "model 'nope' not found"},
    )
    assert call(handler, "PUT", ALIAS, {"version": 2}) == (
        422,
        {"error": "invalid request: version: Input should be a valid string"},
    )


def test_docs_and_openapi_are_served(handler: Any) -> None:
    docs = handler(
        build_event(GatewayRequest("GET", "/docs", "", [], b""), "GET", "/docs", {}), None
    )
    assert docs["statusCode"] == 200 and 'data-openapi="openapi.json"' in docs["body"]
    spec = handler(
        build_event(
            GatewayRequest("GET", "/openapi.json", "", [], b""), "GET", "/openapi.json", {}
        ),
        None,
    )
    assert orjson.loads(spec["body"])["info"]["title"] == "aiaas control plane"


@pytest.mark.parametrize(
    ("path", "name"),
    [("/control/models/%2e%2e", "'%2e%2e'"), ("/control/models/ir%69s", "'ir%69s'")],
)
def test_the_path_is_read_as_api_gateway_handed_it_over(handler: Any, path: str, name: str) -> None:
    """API Gateway has decoded the path (twice) before the function runs; Mangum decoded it once
    more, so a name sent as %25252e%25252e reached the check as '..', and ir%252569s as iris."""
    given = event("GET", "/control/models/iris")
    given["rawPath"] = given["requestContext"]["http"]["path"] = path
    response = handler(given, None)
    assert (response["statusCode"], orjson.loads(response["body"])) == (
        400,
        {"error": f"invalid model name {name}: use {names.MODEL_RULE}"},
    )


def test_an_alias_record_says_a_rollback_made_it_and_a_retry_by_its_caller_is_a_200(
    handler: Any,
) -> None:
    """`rolled_back` (the second brake's mark, rollback_pinned) was dropped from every answer
    (the response model had no such field; review_rev5 5); and a caller retrying its own
    rollback (its answer lost) got a 409 (review_rev5 4): now the record as it stands, a 200."""
    assert call(handler, "PUT", ALIAS, {"version": "2"}, authorizer=IAM)[0] == 200
    status, body = call(handler, "POST", f"{ALIAS}/rollback", authorizer=IAM)
    assert (status, body["version"], body["rolled_back"]) == (200, "1", True)
    assert call(handler, "GET", ALIAS) == (200, body)
    assert call(handler, "POST", f"{ALIAS}/rollback", authorizer=IAM) == (200, body)  # a retry
    status, refused = call(handler, "POST", f"{ALIAS}/rollback", authorizer=JWT)  # another
    assert status == 409
    assert "was rolled back to 1 from 2 by arn:aws:iam::123456789012:user/alice" in refused["error"]
    assert call(handler, "GET", ALIAS) == (200, body)  # nothing moved
    status, body = call(handler, "PUT", ALIAS, {"version": "2"}, authorizer=JWT)
    assert (status, body["rolled_back"]) == (200, None)  # gone with the next move
    schema = handler(
        build_event(
            GatewayRequest("GET", "/openapi.json", "", [], b""), "GET", "/openapi.json", {}
        ),
        None,
    )
    record = orjson.loads(schema["body"])["components"]["schemas"]["AliasRecord"]
    assert record["properties"]["rolled_back"]["anyOf"] == [{"type": "boolean"}, {"type": "null"}]
