"""A long-running `aiaas serve` logs routine evictions at INFO and warns only on churn.

Found soaking serve while CI published and promoted a version every few seconds: past
AIAAS_MAX_VERSIONS each new version evicted a superseded one nobody called any more, and each
eviction was a WARNING line ("evicted iris:N to load iris:M"), per worker, per release: an
operator alerting on WARNING lines was paged for every release. A version evicted and then
loaded again soon after (the pool too small for what is in use) is what costs: one WARNING at
most once a minute, and `aiaas_model_loads_total{outcome="reloaded"}` counts each."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import orjson

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve
from tests.infra.test_serve_metrics import AUTH

JSON_AUTH = {**AUTH, "content-type": "application/json"}
BODY = orjson.dumps({"inputs": [[0.5] * 4]})


def publish(registry: Registry, tmp_path: Path, version: str) -> None:
    path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
    registry.publish(onnx_factory.manifest_for(path, "m", version), path)


def served_version(base: str, path: str) -> str:
    answer = httpx.post(f"{base}{path}", content=BODY, headers=JSON_AUTH, timeout=30)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


def lines(log: Path) -> list[dict[str, object]]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_superseded_versions_evict_at_info_and_reloads_warn_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    publish(registry, tmp_path, "1")
    registry.set_alias("m", "production", "1")
    env = {
        "AIAAS_API_TOKEN": TOKEN,
        "AIAAS_MAX_VERSIONS": "2",
        "AIAAS_LOG_FORMAT": "json",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    for server in start_serve(store, "--models", "m", env=env, headers=AUTH):
        assert served_version(server.base, "/models/m/predict") == "1"
        for version in ("2", "3", "4", "5"):  # each release promoted: the one before is left
            publish(registry, tmp_path, version)
            registry.set_alias("m", "production", version)
            deadline = time.monotonic() + 10
            while served_version(server.base, "/models/m/predict") != version:
                assert time.monotonic() < deadline, f"m@production never served {version}"
                time.sleep(0.1)
        said = lines(server.log)
        evicted = [line for line in said if str(line["message"]).startswith("evicted m:")]
        assert [(line["level"], line["message"]) for line in evicted] == [
            ("INFO", f"evicted m:{old} to load m:{new}: 2 versions loaded (AIAAS_MAX_VERSIONS)")
            for old, new in (("1", "3"), ("2", "4"), ("3", "5"))
        ]
        assert not [line for line in said if line["level"] == "WARNING"]

        # Callers pinning the evicted versions: each load now evicts one still in use.
        for version in ("1", "2", "3") * 2:
            assert served_version(server.base, f"/models/m/versions/{version}/predict") == version
        said = lines(server.log)
        warned = [str(line["message"]) for line in said if line["level"] == "WARNING"]
        assert len(warned) == 1, warned  # once a minute, however many reloads
        assert (
            warned[0].startswith("m:1 loaded again ")
            and "after its eviction (2 versions" in (warned[0])
        )
        assert "1 such reload(s) since the last line, 1 in all" in warned[0]
        metrics = httpx.get(f"{server.base}/metrics", headers=AUTH, timeout=10).text
        reloaded = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("aiaas_model_loads_total{") and 'outcome="reloaded"' in line
        ]
        assert sum(reloaded) == 6  # every pinned load was of a version evicted a moment before
        evictions = [
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith('aiaas_model_evictions_total{model="m"}')
        ]
        assert evictions == [9.0]
