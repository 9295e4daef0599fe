"""A model deleted from the store (every version, by hand) is not served again from the local
record (functions/runtime/served_record.py) by a copy started while the store is away. Found
running `aiaas serve --workers 2` on S3: teamd deleted, its calls 404; the store went away, a
worker was killed (-9) and respawned, and it served teamd:1 again from the cache ("the store is
away: serving teamd:1, the version it last resolved to here") until the store answered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import ModelNotFound, StoreUnavailable, StoreUnreachable
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
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
