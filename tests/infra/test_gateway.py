"""The local API gateway in-process: routing, v2.0 events, responses, auth, limits, failures.

Toy handlers are real modules written to a temp dir and loaded the way template functions are;
the predict and health functions are the real ones over a published digits-mlp.
"""

from __future__ import annotations

import base64
import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra.local.functions import LocalFunction
from infra.local.gateway import (
    Gateway,
    GatewayRequest,
    GatewayResponse,
    to_http,
)
from infra.template import FunctionSpec, HttpRoute

TOY_HANDLERS = """
import json, os

FLAVOUR = os.environ.get("FLAVOUR", "none")  # read at init, like a real handler's config

def echo(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"event": event, "flavour": FLAVOUR,
                                "function": context.function_name})}

def raw(event, context):
    return {"answer": 42}

def binary(event, context):
    return {"statusCode": 201, "body": "AAEC", "isBase64Encoded": True,
            "headers": {"X-Kind": "bytes"}, "cookies": ["a=1; Path=/", "b=2"]}

def boom(event, context):
    raise RuntimeError("secret internals /etc/passwd")
"""


@pytest.fixture(scope="module")
def toy_module(tmp_path_factory: pytest.TempPathFactory) -> str:
    import sys

    folder = tmp_path_factory.mktemp("toys")
    (folder / "aiaas_toy_handlers.py").write_text(textwrap.dedent(TOY_HANDLERS))
    sys.path.insert(0, str(folder))
    return "aiaas_toy_handlers"


def toy(module: str, attr: str, *routes: tuple[str, str], **env: str) -> LocalFunction:
    spec = FunctionSpec(
        logical_id=f"Toy{attr.title()}",
        handler=f"{module}.{attr}",
        environment={},
        routes=[HttpRoute(m, p) for m, p in routes],
    )
    return LocalFunction(spec, env)


def request(
    method: str, path: str, body: bytes = b"", query: str = "", **headers: str
) -> GatewayRequest:
    pairs = [(k.replace("_", "-"), v) for k, v in headers.items()]
    return GatewayRequest(method, path, query, pairs, body, source_ip="10.1.2.3")


def doc(response: GatewayResponse) -> Any:
    return json.loads(response.body)


def event_of(response: GatewayResponse) -> dict[str, Any]:
    assert response.status == 200, response.body
    return doc(response)["event"]  # type: ignore[no-any-return]


# ---- events ------------------------------------------------------------------------------


def test_event_is_a_complete_http_api_v2_event(toy_module: str) -> None:
    gateway = Gateway({"echo": toy(toy_module, "echo", ("POST", "/items/{id}"))})
    response = gateway.handle(
        GatewayRequest(
            "POST",
            "/items/42",
            "a=1&a=2&b=&c=%20x",
            [
                ("Host", "api.local:8080"),
                ("Content-Type", "application/json"),
                ("X-Multi", "one"),
                ("x-multi", "two"),
                ("User-Agent", "pytest/1"),
                ("Cookie", "s=1; t=2"),
            ],
            b'{"k": "v"}',
            source_ip="10.1.2.3",
        )
    )
    event = event_of(response)
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /items/{id}"
    assert (event["rawPath"], event["rawQueryString"]) == ("/items/42", "a=1&a=2&b=&c=%20x")
    assert event["queryStringParameters"] == {"a": "1,2", "b": "", "c": " x"}
    assert event["pathParameters"] == {"id": "42"}
    assert event["headers"]["x-multi"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert all(k == k.lower() for k in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert (event["body"], event["isBase64Encoded"]) == ('{"k": "v"}', False)
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/items/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "10.1.2.3",
        "userAgent": "pytest/1",
    }
    assert (context["routeKey"], context["stage"], context["domainName"]) == (
        "POST /items/{id}",
        "$default",
        "api.local:8080",
    )
    assert len(context["requestId"]) >= 16
    assert isinstance(context["timeEpoch"], int) and context["timeEpoch"] > 1.7e12
    assert doc(response)["function"] == "ToyEcho"


@pytest.mark.parametrize(
    ("content_type", "body", "encoded"),
    [
        ("application/octet-stream", b"\x00\x01binary", True),
        ("", b"no type", True),
        ("text/plain; charset=utf-8", "héllo".encode(), False),
        ("application/json", b"\xff\xfe not utf-8", True),
    ],
)
def test_body_is_base64_unless_it_is_text(
    toy_module: str, content_type: str, body: bytes, encoded: bool
) -> None:
    gateway = Gateway({"echo": toy(toy_module, "echo", ("POST", "/up"))})
    headers = {"content_type": content_type} if content_type else {}
    event = event_of(gateway.handle(request("POST", "/up", body, **headers)))
    assert event["isBase64Encoded"] is encoded
    sent = base64.b64decode(event["body"]) if encoded else event["body"].encode()
    assert sent == body


def test_no_body_no_query_no_path_parameters(toy_module: str) -> None:
    gateway = Gateway({"echo": toy(toy_module, "echo", ("GET", "/plain"))})
    event = event_of(gateway.handle(request("GET", "/plain")))
    assert "body" not in event and "queryStringParameters" not in event
    assert "pathParameters" not in event and event["isBase64Encoded"] is False


def test_each_instance_runs_its_init_with_its_own_environment(toy_module: str) -> None:
    import os

    before = dict(os.environ)
    salt = toy(toy_module, "echo", ("GET", "/salt"), FLAVOUR="salt")
    sugar = toy(toy_module, "echo", ("GET", "/sugar"), FLAVOUR="sugar")
    assert dict(os.environ) == before  # the patch is undone after init
    gateway = Gateway({"salt": salt, "sugar": sugar})
    assert doc(gateway.handle(request("GET", "/salt")))["flavour"] == "salt"
    assert doc(gateway.handle(request("GET", "/sugar")))["flavour"] == "sugar"


# ---- routing -----------------------------------------------------------------------------


def test_most_specific_route_wins_and_greedy_and_any(toy_module: str) -> None:
    gateway = Gateway(
        {
            "param": toy(toy_module, "echo", ("GET", "/items/{id}")),
            "literal": toy(toy_module, "raw", ("GET", "/items/special")),
            "greedy": toy(toy_module, "echo", ("ANY", "/files/{path+}")),
        }
    )
    assert doc(gateway.handle(request("GET", "/items/special"))) == {"answer": 42}
    assert event_of(gateway.handle(request("GET", "/items/7")))["pathParameters"] == {"id": "7"}
    event = event_of(gateway.handle(request("DELETE", "/files/a/b/c.txt")))
    assert event["pathParameters"] == {"path": "a/b/c.txt"}
    assert event["routeKey"] == "ANY /files/{path+}"


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/nope"), ("POST", "/items/1"), ("GET", "/items/1/x")]
)
def test_no_route_is_404(toy_module: str, method: str, path: str) -> None:
    gateway = Gateway({"param": toy(toy_module, "echo", ("GET", "/items/{id}"))})
    response = gateway.handle(request(method, path))
    hint = "; this path takes GET" if path == "/items/1" else ""  # the method was wrong
    assert (response.status, doc(response)) == (
        404,
        {"error": f"no route for {method} {path}{hint}"},
    )


def test_on_miss_can_add_functions_once(toy_module: str) -> None:
    calls: list[int] = []
    gateway: Gateway

    def discover(path: str) -> bool:
        assert path == "/late"
        calls.append(1)
        gateway.add_functions({"late": toy(toy_module, "raw", ("GET", "/late"))})
        return True

    gateway = Gateway({}, on_miss=discover)
    assert doc(gateway.handle(request("GET", "/late"))) == {"answer": 42}
    assert doc(gateway.handle(request("GET", "/late"))) == {"answer": 42}
    assert len(calls) == 1


# ---- responses ---------------------------------------------------------------------------


def test_base64_response_headers_and_cookies(toy_module: str) -> None:
    gateway = Gateway({"bin": toy(toy_module, "binary", ("GET", "/bin"))})
    response = gateway.handle(request("GET", "/bin"))
    assert (response.status, response.body) == (201, b"\x00\x01\x02")
    assert ("x-kind", "bytes") in response.headers
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]
    assert ("content-type", "application/json") in response.headers


def test_a_plain_dict_result_is_a_200_json_body() -> None:
    assert to_http({"answer": 42}) == GatewayResponse(
        200, [("content-type", "application/json")], b'{"answer":42}'
    )
    assert to_http("text").body == b"text"


def test_handler_exception_is_502_without_details(toy_module: str) -> None:
    gateway = Gateway({"boom": toy(toy_module, "boom", ("GET", "/boom"))})
    response = gateway.handle(request("GET", "/boom"))
    assert (response.status, doc(response)) == (502, {"error": "the function raised an error"})
    assert b"passwd" not in response.body


# ---- auth and limits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Basic s3cret", "s3cret", "Bearer ", "Bearer s3cret-and-more"],
)
def test_token_required_is_401(toy_module: str, authorization: str | None) -> None:
    gateway = Gateway({"raw": toy(toy_module, "raw", ("GET", "/r"))}, token="s3cret")
    headers = [("Authorization", authorization)] if authorization is not None else []
    response = gateway.handle(GatewayRequest("GET", "/r", "", headers, b""))
    assert (response.status, doc(response)) == (401, {"error": "missing or invalid bearer token"})
    assert ("www-authenticate", "Bearer") in response.headers


@pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret", "Bearer  s3cret "])
def test_right_token_passes(toy_module: str, authorization: str) -> None:
    gateway = Gateway({"raw": toy(toy_module, "raw", ("GET", "/r"))}, token="s3cret")
    response = gateway.handle(request("GET", "/r", AUTHORIZATION=authorization))
    assert (response.status, doc(response)) == (200, {"answer": 42})


def test_token_is_checked_before_routing(toy_module: str) -> None:
    gateway = Gateway({}, token="s3cret")
    assert gateway.handle(request("GET", "/anything")).status == 401


def test_every_token_of_a_rotation_passes_and_a_swap_never_opens(toy_module: str) -> None:
    """AIAAS_API_TOKEN_FILE's tokens (infra/local/token_file.py): each one, whole, passes; a
    swap to none locks it (a respawned worker that cannot read a changed file), never opens it."""
    gateway = Gateway({"raw": toy(toy_module, "raw", ("GET", "/r"))}, tokens=("old", "new"))

    def status(token: str) -> int:
        return gateway.handle(request("GET", "/r", AUTHORIZATION=f"Bearer {token}")).status

    assert [status(t) for t in ("old", "new", "ol", "oldnew", "new old")] == [
        200,
        200,
        401,
        401,
        401,
    ]
    gateway.accept_tokens((b"new",))
    assert (status("old"), status("new")) == (401, 200)
    gateway.accept_tokens(())  # a worker that cannot know the current set: refuses all
    assert (status("old"), status("new"), status("")) == (401, 401, 401)
    gateway.accept_tokens((b"new",))
    assert status("new") == 200
    open_gateway = Gateway({"r": toy(toy_module, "r", ("GET", "/r"))})
    open_gateway.accept_tokens(())  # never how auth is turned on, nor off
    assert open_gateway.tokens is None


def test_gateway_body_limit_is_413(toy_module: str) -> None:
    gateway = Gateway({"echo": toy(toy_module, "echo", ("POST", "/up"))}, max_body=100)
    assert gateway.handle(request("POST", "/up", b"x" * 100)).status == 200
    response = gateway.handle(request("POST", "/up", b"x" * 101))
    assert (response.status, doc(response)) == (
        413,
        {"error": "request body is over the 100 byte limit"},
    )


def test_a_request_the_gateway_refuses_is_in_the_request_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With AIAAS_LOG_REQUESTS=1 an operator's serve logged every predict but not one 401 or
    404: a caller with a stale token after a rotation was in no log (API Gateway's access log
    has them). The line is the functions' own, model and version '-'."""
    from infra.cli.serve_app import ServeConfig, build_app
    from infra.local.server import ServerLimits

    config = ServeConfig(
        None, str(tmp_path), {"AIAAS_LOG_REQUESTS": "1"}, [], "@production", ("s3cret",),
        ServerLimits(),
    )  # fmt: skip
    gateway = build_app(config).gateway
    caplog.set_level(logging.INFO, "aiaas")
    assert gateway.handle(request("GET", "/v2/health/ready")).status == 401
    assert gateway.handle(request("GET", "/nowhere", AUTHORIZATION="Bearer s3cret")).status == 404
    lines = [
        (r.getMessage(), getattr(r, "status", None), getattr(r, "model", None))
        for r in caplog.records
    ]
    assert lines == [("request", 401, "-"), ("request", 404, "-")]
