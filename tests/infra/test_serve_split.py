"""A split alias under a running `aiaas serve`, over real HTTP: a CLI `promote --weight` from
another process splits the very next requests, one routing key sticks to one version, the
`x-aiaas-version` header names the answering version, and the control plane refuses a bad
split with a 4xx. (The 10,000-request split is checked on the handler in
`tests/functions/test_predict_split.py`; this is the smaller end-to-end check.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_versions import aiaas, publish

MODEL = "split"
ROW = [[1.0, 2.0, 3.0, 4.0]]
PREDICT = f"/models/{MODEL}/predict"
ALIAS = f"/control/models/{MODEL}/aliases/production"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve-split")
    for version in ("1", "2", "3"):
        publish(root, MODEL, version, seed=int(version))
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "1")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def client(server: ServeProcess, root: Path) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.base, headers=headers, timeout=30) as client:
        yield client
    Registry(LocalStore(root / "store")).set_alias(MODEL, "production", "1")


def answering(client: httpx.Client, headers: dict[str, str] | None = None) -> str:
    answer = client.post(PREDICT, json={"inputs": ROW}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == answer.headers["x-aiaas-version"]
    return answer.headers["x-aiaas-version"]


def test_cli_split_over_http(client: httpx.Client, root: Path) -> None:
    assert answering(client) == "1"
    out = aiaas(root, "promote", MODEL, "2", "--weight", "0.1")
    assert out == f"{MODEL}@production -> 1 (90%) + 2 (10%) (was 1)\n"
    counts = Counter(answering(client) for _ in range(1000))
    # 1,000 draws at 10%: one standard deviation is ~0.95 points; 3 points is over 3 of them.
    assert set(counts) == {"1", "2"} and abs(counts["2"] / 1000 - 0.10) <= 0.03, counts
    sticky = {answering(client, {"x-aiaas-routing-key": "tenant-7"}) for _ in range(500)}
    assert len(sticky) == 1
    aiaas(root, "rollback", MODEL)
    assert {answering(client) for _ in range(100)} == {"1"}


def test_control_plane_split_over_http(client: httpx.Client) -> None:
    put = client.put(ALIAS, json={"version": "3", "weight": 0.5})
    assert (put.status_code, put.json()["weights"]) == (200, {"1": 0.5, "3": 0.5})
    assert {answering(client) for _ in range(200)} == {"1", "3"}
    refused = client.put(ALIAS, json={"weights": {"1": 0.4, "2": 0.3, "3": 0.3}})
    assert (refused.status_code, refused.json()) == (
        400,
        {"error": "an alias splits traffic between at most 2 versions; got 3 (1, 2, 3)"},
    )
    out_of_range = client.put(ALIAS, json={"version": "3", "weight": 1.0})
    assert out_of_range.status_code == 400
    assert out_of_range.json()["error"].startswith("weight must be from 1e-06 to 0.999999")
    assert client.get(ALIAS).json()["weights"] == {"1": 0.5, "3": 0.5}  # unchanged
