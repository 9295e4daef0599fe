"""`aiaas serve --cors-origins`: a browser app on another origin calls the local server as it
calls the stack with `CorsAllowOrigins` (infra/local/cors.py), over real HTTP, sending what a
browser sends: a preflight with no Authorization, then the call with its Origin.

Before (hunt_journey10 1) serve had no CORS: the preflight was a 401 (a token set) or a 404 (no
route for OPTIONS), no answer carried Access-Control-Allow-Origin, and the 403 a page on another
origin got told it to set a token, which then failed on the preflight.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local import cors
from infra.template import load_template
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

APP = "https://app.example.com"
DEV = "http://localhost:5173"
TOKEN = "cors-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PREDICT = "/models/tiny/predict"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cors")
    registry = Registry(LocalStore(root / "store"))
    path = onnx_factory.linear_classifier(root / "1.onnx", features=4, classes=3)
    registry.publish(onnx_factory.manifest_for(path, "tiny", "1", labels=("a", "b", "c")), path)
    registry.set_alias("tiny", "production", "1")
    return root / "store"


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[ServeProcess]:
    args = ("--cors-origins", f"{APP},{DEV}")
    yield from start_serve(store, *args, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH)


def preflight(server: ServeProcess, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(
        server.base + PREDICT,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def readable_by(answer: httpx.Response, origin: str) -> bool:
    """What a browser checks before it gives the page the answer."""
    return answer.headers.get("access-control-allow-origin") == origin


def test_a_preflight_is_answered_with_no_token(server: ServeProcess) -> None:
    assert "--cors-origins: pages on" not in server.output()  # a token: they are served
    for origin in (APP, DEV):
        answer = preflight(server, origin)
        assert answer.status_code == 204, answer.text
        assert readable_by(answer, origin)
        allowed = answer.headers["access-control-allow-headers"].split(",")
        assert {"authorization", "content-type", "inference-header-content-length"} <= set(allowed)
        assert "POST" in answer.headers["access-control-allow-methods"].split(",")
        assert answer.headers["vary"] == "origin"


def too_large(server: ServeProcess, headers: dict[str, str]) -> httpx.Response:
    """A call that declares 11 MiB, over the 10 MiB limit: its 413 comes before the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", PREDICT)
        for name, value in {**headers, "Content-Length": str(11 << 20)}.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())
    finally:
        connection.close()


def test_answers_and_errors_are_readable_by_a_listed_origin(server: ServeProcess) -> None:
    """A page reads the `{"error"}` of a refusal (401, 404, 413, 422), not a network error,
    and the headers the docs tell it to read."""
    row = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}
    headers = {"Origin": APP, **AUTH}
    ok = httpx.post(server.base + PREDICT, json=row, headers=headers)
    assert ok.status_code == 200 and readable_by(ok, APP)
    exposed = set(ok.headers["access-control-expose-headers"].split(","))
    assert {"x-aiaas-version", "apigw-requestid", "retry-after", "etag"} <= exposed
    assert ok.headers["vary"] == "origin"
    errors = [
        httpx.post(server.base + PREDICT, json=row, headers={"Origin": APP}),  # no token
        httpx.post(server.base + "/models/nope/predict", json=row, headers=headers),
        httpx.post(server.base + PREDICT, json={"inputs": [[1, 2]]}, headers=headers),
        too_large(server, headers),
    ]
    statuses = []
    for answer in errors:
        statuses.append(answer.status_code)
        assert readable_by(answer, APP), answer.status_code
        assert answer.json()["error"]
    assert statuses[:2] == [401, 404] and statuses[2] in (400, 422) and statuses[3] == 413


def test_binary_oip_from_an_array_buffer(server: ServeProcess) -> None:
    """What `fetch(url, {body: arrayBuffer})` sends: a JSON header then raw float32 bytes."""
    tensor = np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32)
    head = (
        b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32",'
        b'"parameters":{"binary_data_size":16}}]}'
    )
    body = head + tensor.tobytes()
    answer = httpx.post(
        server.base + "/v2/models/tiny/infer",
        content=body,
        headers={
            "Origin": APP,
            **AUTH,
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(head)),
        },
    )
    assert answer.status_code == 200, answer.text
    assert readable_by(answer, APP)


def test_an_origin_not_listed_gets_no_cors_header(server: ServeProcess) -> None:
    answer = preflight(server, "https://evil.example")
    assert answer.status_code == 204 and "access-control-allow-origin" not in answer.headers
    call = httpx.post(server.base + PREDICT, json={}, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in call.headers
    assert answer.headers["vary"] == call.headers["vary"] == "origin"


def test_an_answer_to_no_origin_says_it_varies_by_origin(server: ServeProcess) -> None:
    """A browser's HTTP cache keeps a GET answered with no CORS header (the URL opened in a tab)
    and gives it to a listed page's fetch of the same URL unless it says `Vary: Origin`: the
    page saw a network error (rev16 1). Errors too."""
    listing = httpx.get(server.base + "/control/models", headers=AUTH)
    assert listing.status_code == 200 and "access-control-allow-origin" not in listing.headers
    refused = httpx.get(server.base + "/control/models")
    assert refused.status_code == 401
    for answer in (listing, refused):
        assert answer.headers["vary"] == "origin", answer.headers


def test_the_lists_are_the_templates() -> None:
    """Local and AWS answer a page alike: serve's lists are the stack's CorsConfiguration."""
    api = load_template(TEMPLATE)["Resources"]["Api"]["Properties"]
    _, config, _ = api["CorsConfiguration"]["Fn::If"]
    assert cors.ALLOW_METHODS.split(",") == config["AllowMethods"]
    assert cors.ALLOW_HEADERS.split(",") == config["AllowHeaders"]
    assert cors.EXPOSE_HEADERS.split(",") == config["ExposeHeaders"]
    assert config["MaxAge"] == cors.MAX_AGE_S


def test_with_no_token_a_page_reads_why_it_is_refused(store: Path) -> None:
    """No token: a page on a listed, non-loopback origin still gets the 403 (a page must not
    move aliases), now readable, and told what to set."""
    for server in start_serve(store, "--cors-origins", f"{APP},http://127.0.0.1:3000"):
        # Said at the start (rev16 5): nothing there told that every call of the page is a 403;
        # a loopback page is served, so not named.
        said = f"--cors-origins: pages on {APP} are refused (403) while serve has no token"
        assert said in server.output(), server.output()
        answer = httpx.post(server.base + PREDICT, json={}, headers={"Origin": APP})
        assert answer.status_code == 403 and readable_by(answer, APP)
        assert f"--cors-origins {APP}" in answer.json()["error"]
        local = httpx.post(
            server.base + PREDICT, json={"inputs": [[0.1, 0.2, 0.3, 0.4]]}, headers={"Origin": DEV}
        )
        assert local.status_code == 200 and "access-control-allow-origin" not in local.headers


def test_an_origin_with_a_path_is_a_usage_error(store: Path) -> None:
    server = ServeProcess(store, "--cors-origins", f"{APP}/")
    try:
        assert server.process.wait(timeout=30) == 2
        assert "no path and no trailing slash" in server.output()
    finally:
        server.stop()
