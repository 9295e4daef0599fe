"""A model deleted from the store (every version, by hand) is not served again from the local
record (functions/runtime/served_record.py) by a copy started while the store is away. Found
running `aiaas serve --workers 2` on S3: teamd deleted, its calls 404; the store went away, a
worker was killed (-9) and respawned, and it served teamd:1 again from the cache ("the store is
away: serving teamd:1, the version it last resolved to here") until the store answered."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import ModelNotFound, StoreUnavailable, StoreUnreachable
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear
from tests.s3server import MotoServer


@pytest.fixture
def own_moto(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server this test may stop, unlike the shared session one."""
    server = MotoServer().start(tmp_path / "moto.log")
    yield server
    server.stop()


def test_a_deleted_model_is_not_served_from_its_record_while_the_store_is_away(
    own_moto: MotoServer, tmp_path: Path
) -> None:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=own_moto.endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1),
    )
    bucket = f"aiaas-gone-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    store = S3Store(bucket, "registry", client=client)
    registry = Registry(store)
    publish_linear(registry, tmp_path, "m", "1")
    registry.set_alias("m", "production", "1")

    def copy() -> ServedModel:  # a worker: its own pool, the cache directory they share
        pool = ModelPool(registry, ArtifactCache(store, tmp_path / "cache"))
        return ServedModel(pool, "m@production", ttl=0.1)

    running, beside = copy(), copy()  # two workers: the other holds the cached file
    assert running.current().manifest.version == "1"  # served: recorded beside the cache
    assert beside.current().manifest.version == "1"
    assert running.records.read(running.ref) is not None
    store.delete_many(list(store.list_keys("models/m")))  # deleted by hand
    time.sleep(0.2)
    deadline = time.monotonic() + 5
    with pytest.raises(ModelNotFound):
        while time.monotonic() < deadline:
            running.current()
            time.sleep(0.01)
    own_moto.stop()  # the store goes away; a worker starts (respawned) meanwhile
    with pytest.raises((StoreUnreachable, StoreUnavailable)):
        copy().current()  # was m:1 from the cache, a model deleted


def workers(tmp_path: Path) -> tuple[Registry, Callable[[], ServedModel]]:
    """A directory store, and a maker of workers serving `m` (each its own pool, one cache)."""
    registry = Registry(LocalStore(tmp_path / "store"))

    def copy() -> ServedModel:
        pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
        return ServedModel(pool, "m", ttl=3600)

    return registry, copy


def published_again_meanwhile(
    registry: Registry, tmp_path: Path, other: ServedModel
) -> Callable[[], None]:
    """While a worker reads the store and finds `m` gone, `m` is published again and `other`
    (another worker) serves it, writing its record."""

    def meanwhile() -> None:
        shutil.rmtree(tmp_path / "store" / "models" / "m", ignore_errors=True)
        publish_linear(registry, tmp_path, "m", "1", seed=1)
        assert other.current().manifest.version == "1"

    return meanwhile


def test_a_404_read_while_another_worker_records_the_model_published_again_keeps_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, copy = workers(tmp_path)
    publish_linear(registry, tmp_path, "m", "1")
    assert copy().current().manifest.version == "1"  # recorded
    shutil.rmtree(tmp_path / "store" / "models" / "m")  # deleted by hand
    cold, other = copy(), copy()
    again = published_again_meanwhile(registry, tmp_path, other)
    real = cold._resolve_and_load

    def gone_then_published_again(defer: bool = False) -> Any:
        try:
            return real(defer)
        finally:  # its 404 read; before it forgets the record, `other` records m:1 again
            again()

    monkeypatch.setattr(cold, "_resolve_and_load", gone_then_published_again)
    with pytest.raises(ModelNotFound):
        cold.current()
    recorded = cold.records.read(cold.ref)
    assert recorded is not None  # was removed: a worker started while the store is away had
    assert recorded.publish_id == registry.manifest("m", "1").publish_id  # nothing to serve


def test_a_refresh_finding_the_model_gone_keeps_a_record_written_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, copy = workers(tmp_path)
    publish_linear(registry, tmp_path, "m", "1")
    warm = copy()
    assert warm.current().manifest.version == "1"
    shutil.rmtree(tmp_path / "store" / "models" / "m")
    other = copy()
    again = published_again_meanwhile(registry, tmp_path, other)
    real = registry.versions

    def listed_then_published_again(name: str, **kwargs: Any) -> Any:
        found = real(name, **kwargs)
        if not found:  # `_gone`'s read found none; `other` records m:1 published again
            again()
        return found

    monkeypatch.setattr(registry, "versions", listed_then_published_again)
    assert warm._gone()
    monkeypatch.setattr(registry, "versions", real)
    recorded = warm.records.read(warm.ref)
    assert recorded is not None
    assert recorded.publish_id == registry.manifest("m", "1").publish_id
    # and a record seen before the 404, no one else's, still goes (hunt_journey12 3)
    seen = warm.records.seen(warm.ref)
    warm.records.forget(warm.ref, seen)
    assert warm.records.read(warm.ref) is None
