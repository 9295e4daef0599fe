"""`/metrics` of a real `aiaas serve` forgets a version once `aiaas prune` deleted it: its
series stayed in every scrape for the life of the server, one more set per version pruned."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve
from tests.infra.test_serve_metrics import AUTH, scrape

JSON_AUTH = {**AUTH, "content-type": "application/json"}


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_a_pruned_versions_series_go_and_the_others_stay(tmp_path: Path, workers: int) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    args = ("--workers", str(workers), "--models", "m")
    for server in start_serve(store, *args, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH):
        body = orjson.dumps({"inputs": [[0.5] * 4]})
        for version in ("1", "2"):
            for _ in range(3):  # fresh connections: with two workers, both count some
                url = f"{server.base}/models/m/versions/{version}/predict"
                answer = httpx.post(url, content=body, headers=JSON_AUTH, timeout=30)
                assert answer.status_code == 200, answer.text
        before = _versions(scrape(server.base))
        assert {"1", "2"} <= before["aiaas_requests"]
        assert {"1", "2"} <= before["aiaas_model_loads"]
        assert main(["--store", str(store), "prune", "m", "--keep", "1", "--yes"]) == 0
        assert registry.versions("m") == ["2"]
        for _ in range(3):  # whichever worker answers
            after = scrape(server.base)
            for family, versions in _versions(after).items():
                assert "1" not in versions, family
            requests = after["aiaas_requests"]
            kept = [s for s in requests if s.labels.get("version") == "2"]
            assert sum(s.value for s in kept if s.name == "aiaas_requests_total") == 3


def _versions(families: dict[str, list]) -> dict[str, set[str]]:  # type: ignore[type-arg]
    """The versions of model m each family has series of."""
    return {
        name: {s.labels["version"] for s in samples if s.labels.get("model") == "m"}
        for name, samples in families.items()
    }
