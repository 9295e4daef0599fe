"""A copy nobody called for longer than its alias TTL: the requests that arrive together when
traffic comes back are answered by what the alias says now, not by what it said before the
idle time. Found running `aiaas serve --workers 2` on an S3 store at AIAAS_ALIAS_TTL=2: after
a minute idle, during which teama was promoted twice, the first requests of a burst were
answered by teama:2, a version its alias had left 70 s before (only the request that started
the refresh waited for it)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import ObjectStore
from tests.publishing import publish_linear

TTL = 0.2
CALLERS = 8


@pytest.fixture
def served(s3_store: ObjectStore, tmp_path: Path) -> tuple[ServedModel, Registry]:
    registry = Registry(s3_store)
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1")
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    for version in ("1", "2"):  # both loaded: no download in the timings
        pool.load(registry.resolve(f"m:{version}"))
    return ServedModel(pool, "m@production", ttl=TTL), registry


def burst(served: ServedModel) -> list[str]:
    """CALLERS requests at once; the versions that answered them."""
    start, answered = threading.Barrier(CALLERS), []

    def call() -> None:
        start.wait()
        answered.append(served.current().manifest.version)

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answered


def slow_reads(registry: Registry, mocker: MockerFixture, seconds: float) -> None:
    """Each store read takes `seconds` longer (a store further away than loopback moto)."""
    read = registry.store.get_bytes

    def slow(*args: object, **kwargs: object) -> bytes:
        time.sleep(seconds)
        return read(*args, **kwargs)  # type: ignore[arg-type]

    mocker.patch.object(registry.store, "get_bytes", side_effect=slow)


def test_a_burst_after_an_idle_time_gets_the_alias_of_now(
    served: tuple[ServedModel, Registry], mocker: MockerFixture
) -> None:
    model, registry = served
    assert model.current().manifest.version == "1"
    registry.set_alias("m", "production", "2")  # promoted while nobody calls
    time.sleep(TTL + model.refresh_wait + 0.5)
    slow_reads(registry, mocker, 0.05)
    got = burst(model)
    assert got == ["2"] * CALLERS  # were 1 but for the one that started the refresh


def test_busy_traffic_does_not_wait_for_the_refresh_each_ttl(
    served: tuple[ServedModel, Registry], mocker: MockerFixture
) -> None:
    """Requests in a steady stream meet the TTL as it runs out: only the one that starts the
    refresh waits for it, the others are answered at once by the version loaded."""
    model, registry = served
    assert model.current().manifest.version == "1"
    time.sleep(TTL)
    slow_reads(registry, mocker, 0.3)
    started = time.monotonic()
    first = threading.Thread(target=model.current)
    first.start()
    time.sleep(0.05)  # the first call is refreshing
    assert model.current().manifest.version == "1"
    assert time.monotonic() - started < 0.2
    first.join()
