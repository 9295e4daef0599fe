"""`/metrics` of a real `aiaas serve` forgets a version once `aiaas prune` deleted it and its
series stopped changing: they stayed in every scrape for the life of the server, one more set
per version pruned. Not at once: callers pinned to it still get 200s (until AIAAS_ALIAS_TTL),
then 404s, and both left every scrape the moment the prune was written."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectInfo
from infra.cli.main import main
from infra.local.gone_series import GONE_REREAD_S, REREAD_S, PrunedVersions
from tests import onnx_factory
from tests.infra.test_serve import TOKEN, start_serve
from tests.infra.test_serve_metrics import AUTH, scrape, value

JSON_AUTH = {**AUTH, "content-type": "application/json"}


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_a_pruned_versions_series_go_and_the_others_stay(tmp_path: Path, workers: int) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    args = ("--workers", str(workers), "--models", "m")
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_METRICS_GONE_AFTER_S": "0"}  # gone at once
    for server in start_serve(store, *args, env=env, headers=AUTH):
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


GONE_AFTER_S = 3.0  # AIAAS_METRICS_GONE_AFTER_S: 15 minutes unless set


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "two-workers"])
def test_a_pruned_version_still_called_keeps_its_series_until_idle(
    tmp_path: Path, workers: int
) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    env = {
        "AIAAS_API_TOKEN": TOKEN,
        "AIAAS_ALIAS_TTL": "1",  # pinned callers of the pruned version get 404s after 1 s
        "AIAAS_METRICS_GONE_AFTER_S": str(GONE_AFTER_S),
    }
    args = ("--workers", str(workers), "--models", "m")
    for server in start_serve(store, *args, env=env, headers=AUTH):
        assert [_call(server.base, v) for v in ("1", "1", "1", "2", "2", "2")] == [200] * 6
        assert main(["--store", str(store), "prune", "m", "--keep", "1", "--yes"]) == 0
        sent = 3
        for _ in range(2):  # still called: answered from memory, then (past the TTL) 404s
            codes = [_call(server.base, "1") for _ in range(3)]
            assert set(codes) <= {200, 404}, codes
            sent += 3
            requests = scrape(server.base)["aiaas_requests"]  # each scrape, whichever worker
            assert value(requests, "aiaas_requests_total", model="m", version="1") == sent
            time.sleep(1.5)
        assert codes == [404] * 3  # the callers an operator must see: pinned to a pruned version
        four = value(requests, "aiaas_requests_total", version="1", status_class="4xx")
        assert four >= 3
        deadline = time.monotonic() + GONE_AFTER_S + 20
        clean = 0
        while clean < 4:  # whichever worker answers: none has v1 any more
            assert time.monotonic() < deadline, "v1's series stayed past GONE_AFTER_S"
            after = scrape(server.base)
            clean = clean + 1 if all("1" not in v for v in _versions(after).values()) else 0
            time.sleep(0.5)
        requests = after["aiaas_requests"]
        assert value(requests, "aiaas_requests_total", model="m", version="2") == 3
        assert _call(server.base, "1") == 404  # called again: back in the next scrape
        again = scrape(server.base)["aiaas_requests"]
        assert value(again, "aiaas_requests_total", version="1", status_class="4xx") >= 1


def test_a_pruned_version_never_loaded_here_counts_its_pinned_callers(tmp_path: Path) -> None:
    """A worker that never loaded the version (the other worker did, or it started since the
    prune) counted its pinned callers' 404s under version `-`: with two workers the version's
    count fell as they answered, read as a counter reset."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2"):
        path = onnx_factory.linear_classifier(tmp_path / f"m-{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, "m", version), path)
    assert main(["--store", str(store), "prune", "m", "--keep", "1", "--yes"]) == 0
    env = {"AIAAS_API_TOKEN": TOKEN}
    for server in start_serve(store, "--models", "m", env=env, headers=AUTH):
        assert [_call(server.base, "1") for _ in range(2)] == [404, 404]
        assert _call(server.base, "7") == 404  # never published: no series of its own
        requests = scrape(server.base)["aiaas_requests"]
        assert value(requests, "aiaas_requests_total", model="m", version="1") == 2
        assert value(requests, "aiaas_requests_total", model="m", version="7") == 0
        assert value(requests, "aiaas_requests_total", model="m", version="-") == 1


def _call(base: str, version: str) -> int:
    """A pinned predict on a fresh connection: with two workers, both answer some."""
    url, body = f"{base}/models/m/versions/{version}/predict", orjson.dumps({"inputs": [[0.5] * 4]})
    return httpx.post(url, content=body, headers=JSON_AUTH, timeout=30).status_code


READS = """
import os, sys
from pathlib import Path
from functions.runtime.store import LocalStore
from infra.local.gone_series import PrunedVersions
from infra.local.prometheus import PrometheusFamilies

class CountingStore(LocalStore):
    reads = 0
    def get_bytes(self, key):
        self.reads += key.endswith("pruned.json")
        return super().get_bytes(key)

shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
families = PrometheusFamilies(Path(shared) if shared else None)
for model in ("a", "b"):
    for version in ("1", "2", "3", "4"):
        for route in ("predict", "oip"):
            for status in ("2xx", "4xx"):
                families.request(model, version, route, status, 0.001)
        families.version_load(model, version, "loaded", 0.1)
families.request("-", "-", "none", "4xx", None)  # the gateway's own: no model to read
store = CountingStore(sys.argv[1])
gone = PrunedVersions(store)
for _ in range(2):
    before = store.reads
    text = families.render(gone)[0].decode()
    assert 'model="a",route="predict",status_class="2xx",version="4"' in text, text
    print(store.reads - before)
"""


@pytest.mark.parametrize("workers", [1, 2], ids=["one-worker", "shared-files"])
def test_a_scrape_reads_each_models_prune_record_once(tmp_path: Path, workers: int) -> None:
    """A directory store's record was read and parsed once a sample (with shared files) or a
    series: 0.9 ms each for a record of 1,500 pruned versions, seconds a scrape at scale."""
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for model in ("a", "b"):
        for version in ("1", "2", "3", "4"):
            path = onnx_factory.linear_classifier(tmp_path / f"{model}{version}.onnx")
            registry.publish(onnx_factory.manifest_for(path, model, version), path)
        assert main(["--store", str(store), "prune", model, "--keep", "2", "--yes"]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if workers > 1:
        (tmp_path / "metrics").mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    run = subprocess.run(
        [sys.executable, "-c", READS, str(store)], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["2", "2"]  # models a and b, once each a scrape


class CountingS3(S3Store):
    """S3 on moto's server, counting its requests by kind."""

    gets = heads = 0

    def get_bytes(self, key: str) -> bytes:
        self.gets += 1
        return super().get_bytes(key)

    def head(self, key: str) -> ObjectInfo:
        self.heads += 1
        return super().head(key)


def test_on_s3_whether_a_model_is_gone_is_asked_once_a_minute_not_at_each_read(
    s3_store: S3Store, tmp_path: Path
) -> None:
    """Each read of a model's prune record (every `REREAD_S`, so every 15 s scrape) also
    HEADed its newest version: two requests a model a scrape, in series (100 models: 0.36 s a
    scrape against moto, 0.73 s with the HEADs). A model deleted by hand still leaves: its
    series go once idle for `GONE_AFTER_S` (15 min), a minute more at most (review_rev4 2)."""
    registry = Registry(s3_store)
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx")
    registry.publish(onnx_factory.manifest_for(path, "m", "1"), path)
    store = CountingS3(s3_store.bucket, s3_store.prefix)
    gone = PrunedVersions(store)
    assert gone.reread_s == REREAD_S and gone.gone_reread_s == GONE_REREAD_S
    reads = range(0, int(GONE_REREAD_S), int(REREAD_S))  # a record read each REREAD_S
    assert all(gone.pruned("m", now, {"1"}) == (frozenset(), False) for now in reads)
    assert (store.gets, store.heads) == (len(reads), 1)
    for key in list(store.list_keys("models/m")):  # the folder deleted by hand
        store.delete(key)
    assert gone.pruned("m", GONE_REREAD_S, {"1"}) == (frozenset(), True)
    assert store.heads == 2
