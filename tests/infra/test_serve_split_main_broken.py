"""`aiaas serve` over real HTTP, started while a split alias's MAIN version fails its integrity
check in the store (its model.onnx changed after publishing; the server has no verified copy):
the callers routed to the healthy canary are answered by it, the others get a 503 naming the
version they are routed to and the failure, each key keeps its version, and the damaged bytes
answer no one. Before, every request was answered 503. (The handler-level check, with the
answers compared to the canary's own model: tests/functions/test_predict_split_main_broken.py.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_versions import publish
from tests.publishing import flip_stored_model_byte

MODEL = "halfbroken"
PREDICT = f"/models/{MODEL}/predict"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-main-broken")
    for version in ("1", "2"):
        publish(root, MODEL, version, seed=int(version))
    registry = Registry(LocalStore(root / "store"))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "production", "2", weight=0.5)
    flip_stored_model_byte(registry.store, MODEL, "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers=HEADERS)


def test_the_canary_answers_its_share_over_http(server: ServeProcess) -> None:
    seen: dict[str, str] = {}
    outcomes: Counter[tuple[int, str]] = Counter()
    with httpx.Client(base_url=server.base, headers=HEADERS, timeout=30) as client:
        for key in [f"tenant-{i}" for i in range(60)] * 2:
            answer = client.post(
                PREDICT,
                json={"inputs": [[1.0, 2.0, 3.0, 4.0]]},
                headers={"x-aiaas-routing-key": key},
            )
            version = answer.headers["x-aiaas-version"]
            assert seen.setdefault(key, version) == version, key  # one key, one version
            if version == "2":
                assert answer.status_code == 200, answer.text
                assert answer.json()["version"] == "2"
            else:
                assert (version, answer.status_code) == ("1", 503), answer.text
                assert answer.json() == {
                    "error": "version 1, which this request is routed to, is not served: "
                    f"model {MODEL}:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
                }
            outcomes[answer.status_code, version] += 1
    assert set(outcomes) == {(200, "2"), (503, "1")}, outcomes
