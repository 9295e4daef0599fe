"""`aiaas serve --trusted-proxy` with no token (docs/serve.md's nginx set-up) still refuses what a
web page sends straight to its port, over real HTTP (infra/local/open_guard.py).

Found by a security review: with --trusted-proxy the guard was not installed at all, so a
browser on the proxy's host reached the port directly: a cross-site form rolled production
back (200) and a foreign Host read /control/models. Requests that came through the proxy (from
its address, with the X-Forwarded-For it adds) keep working with the proxy's names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.infra.test_serve import ServeProcess, start_serve
from tests.infra.test_serve_open_guard import form_refused, store

__all__ = ["store"]  # the module's store fixture, shared
BODY = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}
NGINX = {"X-Forwarded-For": "203.0.113.7"}  # what `proxy_add_x_forwarded_for` sends


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[ServeProcess]:
    yield from start_serve(store, "--host", "127.0.0.1", "--trusted-proxy", "127.0.0.1")


def test_a_cross_site_form_sent_to_the_port_directly_is_refused(
    server: ServeProcess, store: Path
) -> None:
    form_refused(server, store, "https://evil.example")
    foreign = httpx.get(server.base + "/control/models", headers={"Host": "evil.example"})
    assert foreign.status_code == 403


@pytest.mark.parametrize("port", ["{}", "0{}"], ids=["port", "leading-zero"])  # was let in
def test_a_rebinding_page_that_sends_the_proxys_header_itself_is_refused(
    server: ServeProcess, port: str
) -> None:
    host = {"Host": f"attacker.example:{port.format(server.port)}", **NGINX}
    answer = httpx.get(server.base + "/control/models", headers=host)
    assert answer.status_code == 403, answer.text
    assert "is not this server's name" in answer.json()["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "aiaas", **NGINX},  # docs/serve.md's `proxy_pass http://aiaas/` (its upstream)
        {"Host": "models.example.com", "Origin": "https://models.example.com", **NGINX},
        {"Host": f"127.0.0.1:{8080}", "Origin": "https://models.example.com", **NGINX},
        {},  # curl on the host itself, no Origin
    ],
    ids=["upstream-name", "proxy-site-page", "proxy-pass-address", "local-curl"],
)
def test_the_proxys_requests_and_local_clients_are_answered(
    server: ServeProcess, headers: dict[str, str]
) -> None:
    answer = httpx.post(server.base + "/models/tiny/predict", json=BODY, headers=headers)
    assert answer.status_code == 200, answer.text
