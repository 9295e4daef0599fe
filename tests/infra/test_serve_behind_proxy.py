"""`aiaas serve` behind a reverse proxy (nginx, docs/serve.md "Behind a reverse proxy"), without one:
the requests nginx sends (HTTP/1.0, `Connection: close`, its `X-Forwarded-For`, a path prefix
stripped, a client's gzip body passed as it came) made here by hand, to the real server."""

from __future__ import annotations

import gzip
import re
import socket
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx
import orjson
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.forwarded import caller_address
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

TOKEN = "proxied-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "proxied"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("proxied")
    registry = Registry(LocalStore(root / "store"))
    path = onnx_factory.linear_classifier(root / "m.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(path, MODEL, version), path)
    registry.set_alias(MODEL, "production", "1")
    env = {"AIAAS_API_TOKEN": TOKEN}
    yield from start_serve(root / "store", "--trusted-proxy", "127.0.0.1", env=env, headers=AUTH)


def nginx_request(server: ServeProcess, method: str, path: str, body: bytes, *head: str) -> bytes:
    """A request as nginx's `proxy_pass` sends it by default (HTTP/1.0, closed after), raw."""
    lines = [
        f"{method} {path} HTTP/1.0",
        f"Host: 127.0.0.1:{server.port}",
        "Connection: close",
        f"Content-Length: {len(body)}",
        f"Authorization: Bearer {TOKEN}",
        "Content-Type: application/json",
        *head,
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def test_a_gzip_control_plane_body_is_read_as_the_predict_api_reads_it(
    server: ServeProcess,
) -> None:
    """It was a 400 "body is not valid JSON: not UTF-8 (byte 0x8b ...)", naming neither the
    encoding nor the fix, while the predict routes inflate the same body."""
    url = f"{server.base}/control/models/{MODEL}/aliases/gzipped"
    packed = gzip.compress(b'{"version": "2"}')
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    # The control plane's first call may import FastAPI (its cold start: seconds on a loaded
    # host, over httpx's 5 s default in a CI run beside other work).
    answer = httpx.put(url, content=packed, headers=headers, timeout=60)
    assert (answer.status_code, answer.json()["version"]) == (201, "2")
    answer = httpx.put(url, content=packed, headers={**headers, "Content-Encoding": "br"})
    assert answer.status_code == 415
    assert answer.json() == {
        "error": "Content-Encoding 'br' is not supported: send the body as it is, "
        "or gzip or deflate it"
    }


def test_a_created_alias_location_resolves_under_the_proxy_path_prefix(
    server: ServeProcess,
) -> None:
    """nginx's `location /ml/ { proxy_pass http://aiaas/; }` strips /ml: an absolute
    `Location: /control/...` sent the client to a URL outside the prefix."""
    headers = {**AUTH, "Content-Type": "application/json"}
    for sent in ("/control/models/proxied/aliases/located", "/control/models/proxied/aliases/sl/"):
        answer = httpx.put(
            server.base + sent, content=b'{"version": "1"}', headers=headers, timeout=60
        )
        assert answer.status_code == 201
        as_client_sent = f"https://proxy.example/ml{sent}"
        assert urljoin(as_client_sent, answer.headers["location"]) == as_client_sent


@pytest.mark.parametrize("page", ["/docs", "/docs/"])
def test_the_docs_page_loads_only_what_this_server_serves_under_the_prefix(
    server: ServeProcess, page: str
) -> None:
    """FastAPI's page loaded Swagger UI from cdn.jsdelivr.net (blank with no internet) and asked
    for `/openapi.json` at the host's root, outside `/ml/`. Each URL the page names, resolved as
    a browser at the proxy's `/ml/docs` does, must be under the prefix and served here."""
    answer = httpx.get(server.base + page, headers=AUTH)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    assert "://" not in answer.text  # no absolute URL, in the markup or the script
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    named = re.findall(r'(?:src|href|data-openapi)="([^"]*)"', answer.text)
    assert "openapi.json" in {url.rsplit("/", 1)[-1] for url in named}
    for url in named:
        if url.startswith("data:"):
            continue
        in_browser = urljoin(f"https://proxy.example/ml{page}", url)
        assert in_browser.startswith("https://proxy.example/ml/")
        upstream = in_browser.removeprefix("https://proxy.example/ml")  # nginx strips it
        fetched = httpx.get(server.base + upstream, headers=AUTH)
        assert fetched.status_code == 200, (url, upstream)
        if upstream == "/openapi.json":
            assert fetched.json()["paths"]["/control/models"]


def test_behind_a_trusted_proxy_the_change_is_recorded_from_the_address_it_saw(
    server: ServeProcess,
) -> None:
    """The client's own X-Forwarded-For entry (left) is not believed; nginx's (right) is."""
    path = f"/control/models/{MODEL}/aliases/forwarded"
    answer = nginx_request(
        server, "PUT", path, b'{"version": "1"}', "X-Forwarded-For: 6.6.6.6, 10.0.0.5"
    )
    assert answer.startswith(b"HTTP/1.1 201") or answer.startswith(b"HTTP/1.0 201"), answer
    record = orjson.loads(answer.partition(b"\r\n\r\n")[2])
    assert record["updated_by"] == "bearer-token-holder@10.0.0.5"


@pytest.mark.parametrize(
    ("peer", "forwarded", "caller"),
    [
        ("127.0.0.1", ["6.6.6.6, 10.0.0.5"], "10.0.0.5"),  # the client's own entry is ignored
        ("127.0.0.1", ["6.6.6.6", "10.0.0.5, 127.0.0.1"], "10.0.0.5"),  # two proxies, two lines
        ("10.0.0.9", ["6.6.6.6"], "10.0.0.9"),  # straight from a client: its address
        ("127.0.0.1", [], "127.0.0.1"),  # the proxy itself, no header
        ("127.0.0.1", ["10.0.0.5, not-an-address"], "127.0.0.1"),  # garbled: the peer
        ("127.0.0.1", ["::ffff:10.0.0.5", "::1"], "::ffff:10.0.0.5"),  # as written
    ],
)
def test_caller_address(peer: str, forwarded: list[str], caller: str) -> None:
    headers = [("x-forwarded-for", value) for value in forwarded]
    assert caller_address(peer, headers, frozenset({"127.0.0.1", "::1"})) == caller


def test_a_wrong_token_with_a_body_nginx_sends_whole_is_a_401_not_a_reset(
    server: ServeProcess,
) -> None:
    """nginx writes the whole body before it reads the answer: refused on its token and
    closed with the body unread, the socket was reset under nginx's write (EPIPE), and its
    client got a 502, one in four 1.3 MB requests; every time from a socket that sends in
    64 KiB, as here."""
    body = b"[" + b"0," * 650_000 + b"0]"
    lines = [
        "POST /models/proxied/predict HTTP/1.0",
        f"Host: 127.0.0.1:{server.port}",
        f"Content-Length: {len(body)}",
        "Authorization: Bearer not-the-token",
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + body)  # was: BrokenPipeError
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == b"401"
    assert orjson.loads(text) == {"error": "missing or invalid bearer token"}
