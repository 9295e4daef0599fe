"""`aiaas serve`'s discovery of a model published a moment ago, right after another miss.

A call for a model not served lists the store again, at most once every RESCAN_SECONDS (2 s):
a flood of unknown names must not become a flood of store listings. Any miss (a typo, a probe,
the model a CI loop tested before) therefore made the first call to a model published within
2 s after it a 404 "no model 'X' is served here" (in a loop publishing and testing models one
after another, about half of them). Now a miss inside that window whose path names a model
not looked up lately looks that one name up (one listing of its versions): a model that exists
is routed at once, and a flood of random names costs at most MAX_NAME_CHECKS such listings and
one scan each window.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.runtime.store import LocalStore
from infra.cli import serve_discovery
from infra.cli.main import main
from infra.cli.serve_app import ServeConfig, build_app
from infra.local.gateway import GatewayRequest
from infra.local.server import ServerLimits
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

ROW = {"inputs": [[1.0, 2.0, 3.0, 4.0]]}


def publish(store: Path, name: str, work: Path) -> None:
    """`aiaas publish` (the CLI's main, in process) of a 4-feature linear classifier."""
    path = onnx_factory.linear_classifier(work / f"{name}.onnx", features=4, classes=2, seed=3)
    assert main(["--store", str(store), "publish", str(path), "--name", name]) == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("discovery")
    publish(root / "store", "first", root)
    yield from start_serve(root / "store")


def test_a_model_published_right_after_a_miss_is_served_at_once(
    served: ServeProcess, tmp_path: Path
) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as http:
        for round in range(3):  # as a CI loop publishes and tests models one after another
            miss = http.post(f"/models/nothere-{round}/predict", json=ROW)
            assert miss.status_code == 404, miss.text
            started = time.monotonic()
            name = f"fresh-{round}"
            publish(served.store, name, tmp_path)
            answer = http.post(f"/models/{name}/predict", json=ROW)
            # Within the 2 s a miss's scan is reused for (else the test proves nothing).
            assert time.monotonic() - started < serve_discovery.RESCAN_SECONDS
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == name
            ready = http.get(f"/v2/models/{name}/ready")
            assert ready.status_code == 200, ready.text


def test_a_flood_of_unknown_names_looks_up_a_bounded_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process (the gateway a worker builds), counting the store's listings of one model's
    versions: 100 random names inside one window cost MAX_NAME_CHECKS of them, and the same
    name asked again in the window none."""
    store = tmp_path / "store"
    publish(store, "first", tmp_path)
    env = {"AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    config = ServeConfig(None, str(store), env, None, "", None, ServerLimits(), listed=())
    gateway = build_app(config).gateway
    listed: list[str] = []
    keys = LocalStore.list_keys

    def counted(self: LocalStore, prefix: str, after: str = "") -> Any:
        listed.append(prefix)
        return keys(self, prefix, after)

    monkeypatch.setattr(LocalStore, "list_keys", counted)
    monkeypatch.setattr(serve_discovery, "RESCAN_SECONDS", 30.0)  # one window for all of it

    def post(name: str) -> int:
        body = json.dumps(ROW).encode()
        request = GatewayRequest("POST", f"/models/{name}/predict", "", [], body)
        return gateway.handle(request).status

    assert post("nothere") == 404  # the scan: a walk of the whole store
    assert listed == ["models"]
    listed.clear()
    assert {post(f"x{uuid.uuid4().hex[:12]}") for _ in range(100)} == {404}
    assert len(listed) == serve_discovery.MAX_NAME_CHECKS
    assert all(p.startswith("models/x") and p.endswith("/versions") for p in listed)
    listed.clear()
    assert post("nothere") == 404 and post("nothere") == 404 and listed == []
    # The bound's price: a model published now, asked while this window's lookups are spent,
    # is found by the next window's scan.
    publish(store, "late", tmp_path)
    assert post("late") == 404
    monkeypatch.setattr(serve_discovery, "RESCAN_SECONDS", 0.0)
    assert post("late") == 200
