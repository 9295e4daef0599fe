"""`aiaas serve` with no token (loopback, the default) refuses what a web page's requests carry,
over real HTTP (infra/local/open_guard.py).

Found by a security review: a form any page could post across sites rolled the production
alias back (`POST /control/models/m/aliases/production/rollback`, 200, the alias moved), and a
page whose domain resolves to 127.0.0.1 (DNS rebinding) reached every route.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

ROLLBACK = "/control/models/tiny/aliases/production/rollback"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("open-guard")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(root / f"{version}.onnx", features=4, classes=3)
        labels = ("a", "b", "c")
        registry.publish(onnx_factory.manifest_for(path, "tiny", version, labels=labels), path)
    registry.set_alias("tiny", "production", "1")
    registry.set_alias("tiny", "production", "2")
    return root / "store"


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[ServeProcess]:
    yield from start_serve(store)


def _production(store: Path) -> str:
    return Registry(LocalStore(store)).resolve("tiny@production").version


def test_a_cross_site_form_post_is_refused_and_moves_nothing(
    server: ServeProcess, store: Path
) -> None:
    form = {"Origin": "https://evil.example", "Content-Type": "application/x-www-form-urlencoded"}
    answer = httpx.post(server.base + ROLLBACK, headers=form, content=b"a=1")
    assert answer.status_code == 403
    assert answer.json()["error"].startswith(
        "a request from a web page at https://evil.example to a server with no token is refused"
    )
    assert _production(store) == "2"
    sandboxed = httpx.post(server.base + ROLLBACK, headers={**form, "Origin": "null"})
    assert sandboxed.status_code == 403 and _production(store) == "2"


@pytest.mark.parametrize("host", ["evil.example:80", "127.evil.example:80", "127.0.0.1.nip.io"])
def test_a_rebinding_pages_host_is_refused(server: ServeProcess, host: str) -> None:
    """A domain that starts with `127.` passed as loopback: a page on 127.attacker.example
    read /control/models and deleted aliases once its name resolved to 127.0.0.1."""
    answer = httpx.get(server.base + "/control/models", headers={"Host": host})
    assert answer.status_code == 403
    assert f"Host {host!r} is not this server's name" in answer.json()["error"]


def form_refused(server: ServeProcess, store: Path, origin: str) -> None:
    """A form a page at `origin` posts to roll production back: a 403, and nothing moved."""
    form = {"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}
    answer = httpx.post(server.base + ROLLBACK, headers=form, content=b"a=1")
    assert answer.status_code == 403, answer.text
    assert _production(store) == "2"


def test_a_page_on_a_domain_named_like_loopback_is_refused(
    server: ServeProcess, store: Path
) -> None:
    form_refused(server, store, "http://127.attacker.example")


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, SDKs, tritonclient: no Origin
        {"Origin": "http://localhost:3000"},  # a page served from this machine
        {"Origin": "http://127.0.0.1:8888", "Host": "localhost"},
        {"Origin": "http://127.0.0.2:8888", "Host": "127.1.2.3:9"},  # all of 127.0.0.0/8
        {"Origin": "http://[::1]:8888", "Host": "[::1]:9"},
        {"Origin": "http://app.localhost:3000", "Host": "localhost"},
    ],
    ids=["no-origin", "localhost-page", "loopback-origin", "net-127", "v6", "dot-localhost"],
)
def test_local_callers_are_answered(server: ServeProcess, headers: dict[str, str]) -> None:
    body = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}
    answer = httpx.post(server.base + "/models/tiny/predict", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def test_with_a_token_a_page_still_needs_it(store: Path, tmp_path: Path) -> None:
    """A page cannot attach a token it does not know: with one, Origin and Host are left to
    the token (a server exposed behind a proxy keeps its own names)."""
    token = {"Authorization": "Bearer s3cret"}
    for server in start_serve(store, env={"AIAAS_API_TOKEN": "s3cret"}, headers=token):
        evil = {"Origin": "https://evil.example", "Host": "models.example.com"}
        assert httpx.post(server.base + ROLLBACK, headers=evil).status_code == 401
        signed = {**evil, **token}
        body = {"inputs": [[0.1, 0.2, 0.3, 0.4]]}
        answer = httpx.post(server.base + "/models/tiny/predict", json=body, headers=signed)
        assert answer.status_code == 200, answer.text
