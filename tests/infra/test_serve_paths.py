"""Percent-encoded paths over real sockets: each decoded as an API Gateway HTTP API decodes it.

HTTP APIs decode a path once to route it and again for the function (infra/local/paths.py);
granian does the first, the gateway the second, and the functions none. The paths are written
to the socket byte for byte (an HTTP client would normalise them). Two servers: granian with
the gateway's app over an echo function, to read the event itself, and `aiaas serve` with the
real predict and control functions, to see what a caller gets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.names import MODEL_RULE
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.s3server import free_port

ROOT = Path(__file__).resolve().parents[2]

ECHO_SERVER = """
import json, sys
from infra.local.app import BodyLimits, GatewayApp
from infra.local.functions import LocalFunction
from infra.local.gateway import Gateway
from infra.local.server import serve
from infra.template import FunctionSpec, HttpRoute

routes = [HttpRoute("GET", "/models/{name}/ready"), HttpRoute("GET", "/files/{key+}")]
spec = FunctionSpec(logical_id="Echo", handler="aiaas_path_echo.echo", environment={},
                    routes=routes)
gateway = Gateway({"Echo": LocalFunction(spec, {})})
serve("127.0.0.1", int(sys.argv[1]), lambda: GatewayApp(gateway, BodyLimits(1024, 5.0)))
"""

ECHO_HANDLER = """
import json

def echo(event, context):
    return {"statusCode": 200, "body": json.dumps(event)}
"""


def send(port: int, method: str, target: bytes, body: bytes = b"") -> tuple[int, Any]:
    """`method target` as written, with the token and `body`; (status, JSON body)."""
    head = (
        f"Host: h\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    reply = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(method.encode() + b" " + target + b" HTTP/1.1\r\n" + head.encode() + body)
        while chunk := sock.recv(65536):
            reply += chunk
    status_line, _, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


@pytest.fixture(scope="module")
def echo_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("echo")
    (folder / "aiaas_path_echo.py").write_text(textwrap.dedent(ECHO_HANDLER))
    port = free_port()
    env = {"PYTHONPATH": f"{ROOT}:{folder}", "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(ECHO_SERVER), str(port)], cwd=ROOT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "the echo server exited"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("paths")
    publish_digits(root)
    env = {"AIAAS_API_TOKEN": TOKEN}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


# ---- the event: routed on the path decoded once, handed over decoded twice -------------------


@pytest.mark.parametrize(
    ("sent", "path", "parameters"),
    [
        (b"/models/digits-mlp/ready", "/models/digits-mlp/ready", {"name": "digits-mlp"}),
        (b"/models/digits%2Dmlp/ready", "/models/digits-mlp/ready", {"name": "digits-mlp"}),
        (b"/models/%252e%252e/ready", "/models/../ready", {"name": ".."}),
        (b"/models/a%252Fb/ready", "/models/a/b/ready", {"name": "a/b"}),
        (b"/models/a%20b/ready", "/models/a b/ready", {"name": "a b"}),
        (b"/models/caf%C3%A9/ready", "/models/caf\u00e9/ready", {"name": "caf\u00e9"}),
        ("/models/caf\u00e9/ready".encode(), "/models/caf\u00e9/ready", {"name": "caf\u00e9"}),
        (b"/models/100%252525/ready", "/models/100%25/ready", {"name": "100%25"}),
        (b"/files/x%2Fy/z%2520w", "/files/x/y/z w", {"key": "x/y/z w"}),
    ],
)
def test_the_function_gets_the_path_and_parameters_decoded_twice(
    echo_port: int, sent: bytes, path: str, parameters: dict[str, str]
) -> None:
    status, event = send(echo_port, "GET", sent)
    assert status == 200, event
    assert (event["rawPath"], event["requestContext"]["http"]["path"]) == (path, path)
    assert event["pathParameters"] == parameters
    assert event["routeKey"] in ("GET /models/{name}/ready", "GET /files/{key+}")


def test_an_encoded_slash_separates_segments_when_routing(echo_port: int) -> None:
    status, body = send(echo_port, "GET", b"/models/a%2Fb/ready")
    assert (status, body["error"].split(";")[0]) == (404, "no route for GET /models/a/b/ready")


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (
            b"/models/100%25/ready",
            "the request path decodes to '/models/100%/ready', where a '%' starts no %XX "
            "escape: API Gateway decodes paths twice, so send a literal '%' as %2525",
        ),
        (
            b"/models/%25ff/ready",
            "the request path decodes to '/models/%ff/ready', whose escapes are not UTF-8 text",
        ),
    ],
)
def test_a_path_that_cannot_be_decoded_twice_is_400(
    echo_port: int, sent: bytes, message: str
) -> None:
    assert send(echo_port, "GET", sent) == (400, {"error": message})


# ---- the real functions: names checked as decoded, refused with what to fix --------------------


VERSIONS = f"/v2/models/{MODEL}/versions"


@pytest.mark.parametrize(
    ("sent", "status", "error"),
    [
        (f"{VERSIONS}/%2e%2e", 400, "invalid version '..'"),
        (f"{VERSIONS}/%252e%252e", 400, "invalid version '..'"),  # was '%2e%2e' locally only
        # routed as one segment; the function routes its rawPath, where the slash is real
        (f"{VERSIONS}/..%252F..", 404, f"no route for GET {VERSIONS}/../.."),
        (f"{VERSIONS}/1%2F..", 404, f"no route for GET {VERSIONS}/1/.."),
        ("/v2/models/a%20b/ready", 404, "no route for GET /v2/models/a b/ready; 'a b' is not"),
        ("/v2/models/caf%C3%A9/ready", 404, "no route for GET /v2/models/caf\u00e9/ready; 'caf"),
        ("/v2/models/caf\u00e9/ready", 404, "no route for GET /v2/models/caf\u00e9/ready; 'caf"),
        ("/v2/models/%252e%252e/ready", 404, "no route for GET /v2/models/%2e%2e/ready; '%2e"),
        ("/control/models/a%20b", 400, "invalid model name 'a b': use"),
        ("/control/models/caf%C3%A9", 400, "invalid model name 'caf\u00e9': use"),
        ("/control/models/%252e%252e", 400, "invalid model name '..': use"),
        # two decodings in all, as in AWS (where Mangum's made a third: test_control_handler)
        ("/control/models/%25252e%25252e", 400, "invalid model name '%2e%2e': use"),
        ("/control/models/100%25", 400, "the request path decodes to '/control/models/100%'"),
    ],
)
def test_odd_names_are_4xx_saying_what_was_read(
    server: ServeProcess, sent: str, status: int, error: str
) -> None:
    got, body = send(server.port, "GET", sent.encode())
    assert (got, body["error"][: len(error)]) == (status, error), body


def test_a_name_that_is_not_a_model_name_gets_the_rule(server: ServeProcess) -> None:
    assert send(server.port, "GET", b"/models/a%20b/tokenizer") == (
        404,
        {
            "error": "no route for GET /models/a b/tokenizer; 'a b' is not a model name "
            f"(use {MODEL_RULE})"
        },
    )


@pytest.mark.parametrize(
    ("method", "sent", "status", "error"),
    [
        # the name check's 400, not a 404 naming `a.csv`: the route took no newline
        ("GET", f"/control/batch/{MODEL}/jobs/a%0a.csv", 400, "invalid job file name 'a\\n.csv'"),
        ("POST", "/control/models/m%0a", 405, "POST is not allowed on /control/models/m\\n; use"),
        ("GET", "/control/modelz%09", 404, "no route for GET /control/modelz\\t (see /docs"),
        ("GET", "/models/m%0d/ready", 404, "no route for GET /models/m\\r/ready; 'm\\r' is not"),
    ],
)
def test_a_path_with_a_control_character_is_shown_with_it_escaped(
    server: ServeProcess, method: str, sent: str, status: int, error: str
) -> None:
    """Starlette's rebuilt URL dropped tab, CR and LF: the message named another path."""
    got, body = send(server.port, method, sent.encode())
    assert (got, body["error"][: len(error)]) == (status, error), body


def test_a_long_path_and_name_are_cut_in_the_404(server: ServeProcess) -> None:
    """The path and the name were echoed whole: a 5000-character name made a 10 KB error."""
    name = "a" * 5000
    status, body = send(server.port, "POST", f"/models/{name}/predict".encode(), b"{}")
    assert status == 404, body
    error = body["error"]
    assert len(error) < 600, error
    assert error.startswith(f"no route for POST /models/{'a' * 192}... (5016 characters); ")
    assert f"'{'a' * 60}'... (5000 characters) is not a model name" in error


@pytest.mark.parametrize(
    ("method", "sent", "expected"),
    [
        ("GET", f"/v2/models/{MODEL}/ready", {"name": MODEL, "version": "1", "ready": True}),
        ("GET", "/v2/models/digits%2Dmlp/ready", {"name": MODEL, "version": "1", "ready": True}),
        ("GET", "/control/models/digits%252Dmlp", {"name": MODEL, "versions": ["1"]}),
        ("POST", f"/models/{MODEL}/versions/%31/predict", {"model": MODEL, "version": "1"}),
    ],
)
def test_valid_requests_still_route(
    server: ServeProcess, method: str, sent: str, expected: dict[str, Any]
) -> None:
    body = json.dumps({"inputs": [[0.5] * 64]}).encode() if method == "POST" else b""
    status, answer = send(server.port, method, sent.encode(), body)
    assert status == 200, answer
    assert {key: answer[key] for key in expected} == expected


def test_an_encoded_slash_in_a_name_separates_segments_as_in_api_gateway(
    server: ServeProcess,
) -> None:
    """`%2F` is decoded before routing, here as by an HTTP API (infra/local/paths.py): a name
    `digits-mlp%2Fversions%2F1` is the path of version 1 (reliability.md said a 404 here and a
    400 in AWS; the serve hunt found this 200)."""
    body = json.dumps({"inputs": [[0.5] * 64]}).encode()
    plain = send(server.port, "POST", f"/models/{MODEL}/versions/1/predict".encode(), body)
    encoded = send(server.port, "POST", f"/models/{MODEL}%2Fversions%2F1/predict".encode(), body)
    assert encoded == plain
    assert (encoded[0], encoded[1]["version"]) == (200, "1")
    status, refused = send(server.port, "POST", b"/models/a%2Fb/predict", body)
    assert (status, refused["error"].split(";")[0]) == (
        404,
        "no route for POST /models/a/b/predict",
    )
