"""ModelPool and ServedModel: one load per version, alias refresh after a TTL, serving through failures."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.config import Config
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import IntegrityError, ModelNotFound
from functions.runtime.pool import ModelPool
from functions.runtime.registry import ModelRef, Registry
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore
from tests.publishing import flip_stored_model_byte, publish_linear
from tests.s3server import MotoServer

TTL = 0.1
X = np.ones((2, 4), dtype=np.float32)


@pytest.fixture
def pool(registry: Registry, cache_dir: Path) -> ModelPool:
    return ModelPool(registry, ArtifactCache(registry.store, cache_dir))


def logits(served: ServedModel) -> np.ndarray:
    return served.current().predict({"x": X})["logits"]


def after_ttl() -> None:
    time.sleep(TTL * 1.5)


def test_pool_keeps_one_session_per_version(
    pool: ModelPool, registry: Registry, tmp_path: Path, mocker: MockerFixture
) -> None:
    v1 = publish_linear(registry, tmp_path, "m", "1", seed=1)
    v2 = publish_linear(registry, tmp_path, "m", "2", seed=2)
    fetch = mocker.spy(pool.cache, "fetch")
    first = pool.load(v1)
    assert (
        pool.load(v1) is first and pool.load(registry.resolve(ModelRef("m", version="1"))) is first
    )
    second = pool.load(v2)
    assert second is not first and second.manifest.version == "2"
    assert fetch.call_count == 2


def test_pool_evicts_the_least_recently_used_version(
    registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    pool = ModelPool(registry, ArtifactCache(registry.store, cache_dir), max_versions=2)
    manifests = [publish_linear(registry, tmp_path, "m", str(v)) for v in (1, 2, 3)]
    first = pool.load(manifests[0])
    pool.load(manifests[1])
    pool.load(manifests[2])
    assert pool.load(manifests[0]) is not first  # evicted, loaded again


def test_an_evicted_version_leaves_no_lock_behind(tmp_path: Path) -> None:
    """Found soaking `aiaas serve` with a version published every minute: a lock per version
    ever loaded stayed for the server's life."""
    registry = Registry(LocalStore(tmp_path / "store"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"), max_versions=2)
    for v in range(1, 6):
        pool.load(publish_linear(registry, tmp_path, "m", str(v)))
    assert sorted(pool._locks) == [("m", "4"), ("m", "5")]  # were 1..5


def test_a_reload_of_the_served_version_after_eviction_is_no_change(
    registry: Registry, tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Pinned-version requests evicted the served version; its reload was logged as
    "m now serves m:2 (was m:2)". Now the version an alias serves is never evicted (its
    `Routed` holds it: evicting it freed nothing), and resolving again is still no change."""
    pool = ModelPool(registry, ArtifactCache(registry.store, cache_dir), max_versions=1)
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    served = ServedModel(pool, "m", ttl=3600)
    first = served.current()
    assert served.version("1").manifest.version == "1"  # over the cap: m:2 stays, served
    served.expire()  # the next request resolves again, as after the TTL
    with caplog.at_level(logging.INFO, "aiaas"):
        reloaded = served.current()
    assert reloaded is first and reloaded.manifest.version == "2"
    assert [r.getMessage() for r in caplog.records if "now serves" in r.getMessage()] == []
    publish_linear(registry, tmp_path, "m", "3", seed=3)
    served.expire()
    with caplog.at_level(logging.INFO, "aiaas"):
        assert served.current().manifest.version == "3"
    assert [r.getMessage() for r in caplog.records if "now serves" in r.getMessage()] == [
        "m now serves m:3 (was m:2)"
    ]


def test_concurrent_cold_requests_load_once(
    pool: ModelPool, registry: Registry, tmp_path: Path, mocker: MockerFixture
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    fetch = mocker.spy(pool.cache, "fetch")
    served = ServedModel(pool, "m", ttl=60)
    barrier = threading.Barrier(8)
    loaded = []

    def request() -> None:
        barrier.wait()
        loaded.append(served.current())

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 8 and len({id(m) for m in loaded}) == 1
    assert fetch.call_count == 1


def test_promotion_is_served_after_the_ttl(
    pool: ModelPool, registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias("m", "production", "1")
    served = ServedModel(pool, "m@production", ttl=TTL)
    patient = ServedModel(pool, "m@production", ttl=3600)
    before = logits(served)
    assert served.current().manifest.version == patient.current().manifest.version == "1"
    registry.set_alias("m", "production", "2")
    if isinstance(registry.store, LocalStore):
        assert patient.current().manifest.version == "2"  # the record's stamp changed: now
    else:
        assert patient.current().manifest.version == "1"  # within its TTL: no S3 round trip
    after_ttl()
    assert served.current().manifest.version == "2"
    assert not np.allclose(logits(served), before)
    registry.set_alias("m", "production", "1")  # a rollback takes effect the same way
    after_ttl()
    assert served.current().manifest.version == "1"
    np.testing.assert_array_equal(logits(served), before)


def test_bare_name_follows_new_versions_and_production(
    pool: ModelPool, registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    served = ServedModel(pool, "m", ttl=TTL)
    assert served.current().manifest.version == "1" and served.name == "m"
    publish_linear(registry, tmp_path, "m", "2")
    after_ttl()
    assert served.current().manifest.version == "2"
    registry.set_alias("m", "production", "1")
    after_ttl()
    assert served.current().manifest.version == "1"


@pytest.fixture
def local_pool(local_store: LocalStore, cache_dir: Path) -> ModelPool:
    return ModelPool(Registry(local_store), ArtifactCache(local_store, cache_dir))


def test_directory_store_switches_on_the_next_call_whatever_the_ttl(
    local_pool: ModelPool, tmp_path: Path
) -> None:
    registry = local_pool.registry
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1")
    aliased = ServedModel(local_pool, "m@production", ttl=3600)
    default = ServedModel(local_pool, "m", ttl=3600)
    assert aliased.current().manifest.version == default.current().manifest.version == "1"
    for move, expected in [
        (lambda: registry.set_alias("m", "production", "3"), "3"),
        (lambda: registry.rollback("m", "production"), "1"),
        (lambda: registry.rollback("m", "production", to="3"), "3"),
        (lambda: registry.set_alias("m", "production", "2"), "2"),
    ]:
        move()
        assert aliased.current().manifest.version == expected
        assert default.current().manifest.version == expected


def test_directory_store_follows_a_new_newest_version_once_its_manifest_lands(
    local_pool: ModelPool, tmp_path: Path
) -> None:
    registry = local_pool.registry
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    served = ServedModel(local_pool, "m", ttl=3600)
    assert served.current().manifest.version == "1"
    manifest = publish_linear(registry, tmp_path / "side", "m", "2", seed=2)
    assert served.current().manifest.version == "2"
    # A publish in progress: the version's folder and model file exist, its manifest not yet.
    store = registry.store
    store.copy("models/m/versions/2/model.onnx", "models/m/versions/3/model.onnx")
    assert served.current().manifest.version == "2"
    store.put_bytes(
        "models/m/versions/3/manifest.json", manifest.to_json().replace('"2"', '"3"').encode()
    )
    assert served.current().manifest.version == "3"


def test_a_failed_switch_keeps_serving_and_is_not_retried_on_every_call(
    local_pool: ModelPool, tmp_path: Path, mocker: MockerFixture
) -> None:
    registry = local_pool.registry
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias("m", "production", "1")
    served = ServedModel(local_pool, "m@production", ttl=3600)
    first = served.current()
    registry.set_alias("m", "production", "2")
    flip_stored_model_byte(registry.store, "m", "2")  # after the promote (which reads the files)
    resolve = mocker.spy(registry, "resolve_split")
    assert served.current() is first and served.current() is first
    assert resolve.call_count == 1
    assert "does not match the manifest" in (served.last_error or "")


def test_a_pinned_version_is_served_without_reading_the_store_again(
    local_pool: ModelPool, tmp_path: Path, mocker: MockerFixture
) -> None:
    registry = local_pool.registry
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    served = ServedModel(local_pool, "m@production", ttl=3600)
    registry.set_alias("m", "production", "2")
    first = served.version("1")
    read = mocker.spy(registry.store, "get_bytes")
    assert served.version("1") is first
    assert read.call_count == 0


def test_pinned_version_never_refreshes(
    pool: ModelPool, registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    served = ServedModel(pool, "m:1", ttl=0)
    first = served.current()
    publish_linear(registry, tmp_path, "m", "2")
    registry.set_alias("m", "production", "2")
    assert served.current() is first
    assert served.version("2").manifest.version == "2"
    assert served.version("1") is first


def test_ttl_comes_from_the_settings(pool: ModelPool) -> None:
    settings = RuntimeSettings.from_env({"AIAAS_ALIAS_TTL": "7.5"})
    assert ServedModel(ModelPool(pool.registry, settings=settings), "m").ttl == 7.5
    assert ServedModel(ModelPool(pool.registry, settings=RuntimeSettings()), "m").ttl == 60.0


def test_corrupted_artifact_is_never_served_cold(
    pool: ModelPool, registry: Registry, tmp_path: Path, cache_dir: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    flip_stored_model_byte(registry.store, "m", "1")
    served = ServedModel(pool, "m", ttl=TTL)
    for _ in range(2):
        with pytest.raises(IntegrityError) as caught:
            served.current()
        assert caught.value.status == HTTPStatus.SERVICE_UNAVAILABLE
        assert (
            caught.value.public_message
            == "model m:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
        )
    assert served.loaded is None and "sha256" in (served.last_error or "")
    assert not any(cache_dir.glob("*.onnx"))


def test_unknown_model_is_not_found(pool: ModelPool) -> None:
    with pytest.raises(ModelNotFound) as caught:
        ServedModel(pool, "ghost", ttl=TTL).current()
    assert caught.value.status == HTTPStatus.NOT_FOUND
    assert caught.value.message == "model 'ghost' not found"


def test_refresh_to_a_corrupted_version_keeps_serving(
    pool: ModelPool, registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias("m", "production", "1")
    served = ServedModel(pool, "m", ttl=TTL)
    before = logits(served)
    registry.set_alias("m", "production", "2")
    flip_stored_model_byte(registry.store, "m", "2")  # after the promote (which reads the files)
    after_ttl()
    np.testing.assert_array_equal(logits(served), before)
    assert served.current().manifest.version == "1"
    assert "does not match the manifest" in (served.last_error or "")


def test_refresh_through_a_corrupt_alias_record_keeps_serving(
    pool: ModelPool, registry: Registry, tmp_path: Path
) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    registry.set_alias("m", "production", "1")
    served = ServedModel(pool, "m@production", ttl=TTL)
    first = served.current()
    registry.store.put_bytes("models/m/aliases/production.json", b"\x00garbage")
    after_ttl()
    assert served.current() is first
    assert "corrupt record" in (served.last_error or "")


@pytest.fixture
def own_moto(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server this test may stop, unlike the shared session one."""
    server = MotoServer().start(tmp_path / "moto.log")
    yield server
    server.stop()


def test_refresh_with_the_store_down_keeps_serving(own_moto: MotoServer, tmp_path: Path) -> None:
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=own_moto.endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1),
    )
    bucket = f"aiaas-down-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    registry = Registry(S3Store(bucket, "registry", client=client))
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias("m", "production", "1")
    served = ServedModel(
        ModelPool(registry, ArtifactCache(registry.store, tmp_path / "c")), "m", ttl=TTL
    )
    before = logits(served)
    registry.set_alias("m", "production", "2")
    own_moto.stop()
    after_ttl()
    np.testing.assert_array_equal(logits(served), before)  # the refresh failed: still v1
    assert served.current().manifest.version == "1"
    assert "Could not connect" in (served.last_error or "")


def test_a_hung_store_never_holds_a_request_longer_than_the_refresh_wait(
    pool: ModelPool, registry: Registry, tmp_path: Path, mocker: MockerFixture
) -> None:
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    served = ServedModel(pool, "m", ttl=TTL)
    served.refresh_wait = 0.2
    first = served.current()
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> bytes:
        release.wait(10)
        raise OSError("store hung")

    mocker.patch.object(registry.store, "get_bytes", side_effect=hang)
    after_ttl()
    started = time.monotonic()
    assert served.current() is first
    assert time.monotonic() - started < 1.0
    assert served.current() is first  # others do not queue behind the hung refresh either
    release.set()


def test_a_model_deleted_from_the_store_is_no_longer_served(tmp_path: Path) -> None:
    """Every version of a model deleted by hand (there is no delete command): a warm copy
    served it on and on ("refresh ... failed, still serving"), where a cold one answered 404."""
    import shutil

    registry = Registry(LocalStore(tmp_path / "store"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    publish_linear(registry, tmp_path, "m", "1")
    served = ServedModel(pool, "m", ttl=TTL)
    assert served.current().manifest.version == "1"
    shutil.rmtree(tmp_path / "store" / "models" / "m")
    after_ttl()
    deadline = time.monotonic() + 5  # the refresh may run beside a request: it answers still
    with pytest.raises(ModelNotFound, match="model 'm' not found"):
        while time.monotonic() < deadline:
            served.current()
            time.sleep(0.01)
    assert ("m", "1") not in pool._models  # its session dropped too
