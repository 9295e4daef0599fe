"""A long-running `aiaas serve` removes a pruned version's files from its model cache once it
drops the version: they stayed for the life of the cache (a trim takes entries only when the
disk or AIAAS_CACHE_MAX_MB runs short), one more entry per version published and pruned, so a
pod's `emptyDir` with a `sizeLimit` (the node's disk has the room) was filled past it and the
pod evicted. Found soaking serve with a version published, promoted and pruned every ~2 s:
62 entries after 60 versions, 54 of them of versions gone from the store."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import httpx
import orjson

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve
from tests.infra.test_serve_metrics import AUTH

JSON_AUTH = {**AUTH, "content-type": "application/json"}
TTL = 1.0  # AIAAS_ALIAS_TTL: how soon a loaded version is found pruned


def publish(store: Path, tmp_path: Path, *versions: str) -> dict[str, str]:
    """Each version of m published from a file of its own; {version: its cache entry's name}."""
    registry, names = Registry(LocalStore(store)), {}
    for version in versions:
        path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
        names[version] = f"{hashlib.sha256(path.read_bytes()).hexdigest()}.onnx"
    return names


def call(base: str, version: str) -> int:
    url = f"{base}/models/m/versions/{version}/predict"
    body = orjson.dumps({"inputs": [[0.5] * 4]})
    return httpx.post(url, content=body, headers=JSON_AUTH, timeout=30).status_code


def cached(store: Path) -> set[str]:
    return {p.name for p in (store.parent / "cache").iterdir() if p.name.endswith(".onnx")}


def test_a_pruned_version_s_files_leave_the_cache_once_its_callers_get_404s(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    names = publish(store, tmp_path, "1", "2", "3")
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": str(TTL)}
    for server in start_serve(store, "--models", "m", env=env, headers=AUTH):
        assert [call(server.base, v) for v in ("1", "2", "3")] == [200] * 3
        assert cached(store) == set(names.values())
        assert main(["--store", str(store), "prune", "m", "--keep", "1", "--yes"]) == 0
        time.sleep(TTL + 0.5)
        assert [call(server.base, v) for v in ("1", "2")] == [404] * 2  # dropped: pruned
        assert cached(store) == {names["3"]}
        assert call(server.base, "3") == 200


def test_an_evicted_version_pruned_meanwhile_leaves_the_cache(tmp_path: Path) -> None:
    """Not called again after the prune: the eviction that drops it finds it pruned."""
    store = tmp_path / "store"
    names = publish(store, tmp_path, "1", "2", "3")
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_ALIAS_TTL": str(TTL), "AIAAS_MAX_VERSIONS": "2"}
    for server in start_serve(store, "--models", "m", env=env, headers=AUTH):
        assert [call(server.base, v) for v in ("3", "1")] == [200] * 2  # loaded: 3 and 1
        assert main(["--store", str(store), "prune", "m", "--keep", "1", "--yes"]) == 0
        names |= publish(store, tmp_path, "4")
        time.sleep(TTL + 0.5)
        assert call(server.base, "4") == 200  # a third version: 1, least recently used, goes
        assert cached(store) == {names["3"], names["4"]}  # 2 was never loaded here
        assert call(server.base, "3") == 200
