"""A model deleted from the store (every version, by hand: there is no delete command) that
callers go on calling: its 404 is answered from memory for an AIAAS_ALIAS_TTL, as a version
never published is, not read from the store on every request. Found running `aiaas serve` on
an S3 store: once the model was gone each request read its alias and listed its versions (two
store reads, 30-80 ms a request on moto, 0.4-0.5 s under load, with every other model's calls
slowed behind them)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import ModelNotFound
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore, ObjectStore
from functions.runtime.unpublished import RememberedNotFound
from tests.publishing import publish_linear

READS = ("get_bytes", "read_versioned", "head", "exists", "list_keys", "list_files", "list_dirs")


def served_then_gone(registry: Registry, tmp_path: Path, ttl: float) -> ServedModel:
    """`m` served, then deleted, and a request answered the 404 (the refresh found it gone)."""
    publish_linear(registry, tmp_path, "m", "1")
    served = ServedModel(
        ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache")), "m", ttl=ttl
    )
    assert served.current().manifest.version == "1"
    return served


def wait_for_404(served: ServedModel) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            served.current()
        except ModelNotFound:
            return
        time.sleep(0.01)
    pytest.fail("the deleted model was still served")


def count_reads(store: ObjectStore, mocker: MockerFixture) -> list[object]:
    return [mocker.spy(store, name) for name in READS if hasattr(store, name)]


def test_a_deleted_model_s_404_reads_nothing_until_the_ttl(
    s3_store: S3Store, tmp_path: Path, mocker: MockerFixture
) -> None:
    registry = Registry(s3_store)
    ttl = 1.5
    served = served_then_gone(registry, tmp_path, ttl=0.1)
    served.ttl = ttl
    s3_store.delete_many(list(s3_store.list_keys("models/m")))  # by hand, as a user would
    time.sleep(0.2)
    wait_for_404(served)
    reads = count_reads(s3_store, mocker)
    for _ in range(20):
        with pytest.raises(ModelNotFound, match="model 'm' not found"):
            served.current()
    assert sum(spy.call_count for spy in reads) == 0  # were 2 a request
    publish_linear(registry, tmp_path, "m", "2")  # published again: served once the TTL is past
    time.sleep(ttl)
    assert served.current().manifest.version == "2"


def test_a_deleted_model_published_again_is_served_at_once_on_a_directory_store(
    tmp_path: Path,
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    served = served_then_gone(registry, tmp_path, ttl=3600)
    shutil.rmtree(tmp_path / "store" / "models" / "m")
    wait_for_404(served)
    with pytest.raises(ModelNotFound):
        served.current()
    publish_linear(registry, tmp_path, "m", "2")
    assert served.current().manifest.version == "2"  # the store tells at once: no TTL


def test_a_restored_snapshot_reads_again_a_404_it_remembered(
    s3_store: S3Store, tmp_path: Path
) -> None:
    """A SnapStart snapshot taken while the model was not there yet (the function deployed
    before the model's first publish) holds the 404 its init found. The clock a restore resumes
    says nothing of the hours since (`expire`'s reason), so each environment restored from it
    answered that 404 from memory for its first AIAAS_ALIAS_TTL, the model published meanwhile;
    a version asked for by its number too (the pool's memory)."""
    registry = Registry(s3_store)
    pool = ModelPool(registry, ArtifactCache(s3_store, tmp_path / "cache"))
    served = ServedModel(pool, "m", ttl=3600)
    asked = (served.current, lambda: served.version("1"))
    for ask in asked:
        with pytest.raises(ModelNotFound):
            ask()  # before the snapshot
    publish_linear(registry, tmp_path, "m", "1")
    for ask in asked:
        with pytest.raises(RememberedNotFound):  # no store read until the TTL
            ask()
    served.expire()  # after_restore
    assert [ask().manifest.version for ask in asked] == ["1", "1"]
