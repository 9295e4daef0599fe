"""A routing key with characters other than ASCII (`josé@example.com`), on a 50/50 alias.

API Gateway hands the function such a header value as text: the predict handler routes it like
any key, one version for all of a caller's requests (checked here on API Gateway v2 events).
`aiaas serve`'s HTTP server (granian) drops such a value before any of our code sees it, so
the caller reached the handler with no key and was routed at random on every request (12
requests: `2 2 2 1 1 1 1 1 2 2 2 2`; hunt_rollout 6). It now answers a 400 that says to send
the key in ASCII; a percent-encoded key is sticky, as any ASCII one is.

Bounded: ~1,000 requests on loopback.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.unreadable_headers import UNREADABLE_KEY
from tests.functions.test_predict_events import http_event
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_versions import publish

MODEL = "keyed"
ROW = [[1.0, 2.0, 3.0, 4.0]]
BODY = '{"inputs": [[1.0, 2.0, 3.0, 4.0]]}'
KEY = "josé@example.com"
HEADER = "x-aiaas-routing-key"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("routing-key-chars")
    publish(root, MODEL, "1", seed=1)
    publish(root, MODEL, "2", seed=2)
    registry = Registry(LocalStore(root / "store"))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "production", "2", weight=0.5)
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(server: ServeProcess) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client


def versions(client: httpx.Client, key: bytes | None, count: int = 200) -> Counter[str]:
    """The versions that answered `count` requests sending `key` (its bytes as sent)."""
    headers = {HEADER: key} if key is not None else {}
    answered: Counter[str] = Counter()
    for _ in range(count):
        answer = client.post(f"/models/{MODEL}/predict", json={"inputs": ROW}, headers=headers)
        assert answer.status_code == 200, answer.text
        answered[answer.headers["x-aiaas-version"]] += 1
    return answered


@pytest.mark.parametrize("key", [KEY, KEY.encode().decode("latin-1")], ids=["utf-8", "latin-1"])
def test_the_handler_routes_a_key_of_any_characters_as_api_gateway_passes_it(
    root: Path, tmp_path: Path, key: str
) -> None:
    """As text in the v2 event (UTF-8, or the bytes read as latin-1): one version, 200 times."""
    registry = Registry(LocalStore(root / "store"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "3600"}, pool)
    event = http_event("POST", f"/models/{MODEL}/predict", BODY, headers={HEADER: key})
    answers = [service.handle(event) for _ in range(200)]
    assert {answer["statusCode"] for answer in answers} == {200}
    answered = Counter(answer["headers"]["x-aiaas-version"] for answer in answers)
    assert len(answered) == 1 and sum(answered.values()) == 200, answered


@pytest.mark.parametrize("sent", [KEY.encode(), KEY.encode("latin-1")], ids=["utf-8", "latin-1"])
def test_serve_refuses_a_key_it_cannot_read_rather_than_route_it_at_random(
    client: httpx.Client, sent: bytes
) -> None:
    for _ in range(200):
        answer = client.post(
            f"/models/{MODEL}/predict", json={"inputs": ROW}, headers={HEADER: sent}
        )
        assert (answer.status_code, answer.json()) == (400, {"error": UNREADABLE_KEY})
    assert "percent-encoded (jos%C3%A9@example.com" in UNREADABLE_KEY
    # The server answers on as before: a key in ASCII sticks, no key is routed at random.
    assert len(versions(client, b"jos%C3%A9@example.com")) == 1
    assert len(versions(client, b"jose@example.com")) == 1
    assert set(versions(client, None, 100)) == {"1", "2"}
