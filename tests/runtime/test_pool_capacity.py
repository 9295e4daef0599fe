"""How many versions one function keeps loaded: enough for what a user may have in use at once
(a weighted alias's two, a rollout candidate, callers pinning older versions), within the
function's memory, with a line for each eviction. The cap was 4 and counted nothing else:
requests alternating over 5 pinned versions and the alias reloaded one on nearly every request
(51 loads in 60 requests; a 16 MB model's request 45 ms instead of 5, seconds for a large one).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from pytest_mock import MockerFixture

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import AiaasError
from functions.runtime.memory_fit import resident_bytes
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.settings import DEFAULT_MAX_VERSIONS, RuntimeSettings
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.publishing import publish_linear

WIDTH = 256 * 1024  # 1 MB of weights a version


@pytest.fixture(scope="module")
def six(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """m:1..6, small linear models; the alias `production` on m:1."""
    root = tmp_path_factory.mktemp("six")
    registry = Registry(LocalStore(root / "store"))
    for version in range(1, 7):
        publish_linear(registry, root, "m", str(version), seed=version)
    registry.set_alias("m", "production", "1")
    return registry


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """w:1..4, each y = x + w with 1 MB of weights in its single file."""
    root = tmp_path_factory.mktemp("wide")
    registry = Registry(LocalStore(root / "store"))
    for version in range(1, 5):
        w = numpy_helper.from_array(np.full(WIDTH, version, np.float32), "w")
        spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, WIDTH]) for n in "xy"]
        graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "add", [spec[0]], [spec[1]], [w])  # fmt: skip
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", onnx_factory.OPSET)])  # fmt: skip
        model.ir_version = 8
        path = root / f"w{version}.onnx"
        path.write_bytes(model.SerializeToString())
        registry.publish(onnx_factory.manifest_for(path, "w", str(version)), path)
    registry.set_alias("w", "production", "1")
    return registry


def pool_of(registry: Registry, tmp_path: Path, **env: str) -> ModelPool:
    settings = RuntimeSettings.from_env(env)
    return ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"), settings=settings)


def test_requests_alternating_over_six_versions_load_each_once(
    six: Registry, tmp_path: Path, mocker: MockerFixture, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(six, tmp_path)
    loads = mocker.spy(pool.cache, "source")
    served = ServedModel(pool, "m@production", ttl=3600)
    x = {"x": np.ones((1, 4), np.float32)}
    with caplog.at_level(logging.WARNING, "aiaas"):
        caplog.clear()  # only this block's lines (the aiaas logger may be at INFO already)
        for request in range(60):  # the alias's version, and callers pinning 2..6
            version = str(1 + request % 6)
            assert served.version(version).predict(x)["logits"].shape == (1, 3)
    assert loads.call_count == 6 and pool.evictions == 0
    assert not caplog.records


def test_past_the_cap_the_least_recently_used_goes_with_a_line_never_the_alias_s(
    six: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = pool_of(six, tmp_path, AIAAS_MAX_VERSIONS="2")
    served = ServedModel(pool, "m@production", ttl=3600)
    first = served.current()  # m:1, the alias's: the least recently used from here on
    with caplog.at_level(logging.INFO, "aiaas"):
        caplog.clear()  # only this block's lines (the aiaas logger may be at INFO already)
        for version in ("2", "3", "4"):
            served.version(version)
    assert pool.evictions == 2
    said = [r for r in caplog.records if r.getMessage().startswith("evicted")]
    # INFO: routine (a superseded version left loaded); a reload soon after is the WARNING
    assert {r.levelno for r in said} == {logging.INFO}
    assert [r.getMessage() for r in said] == [
        "evicted m:2 to load m:3: 2 versions loaded (AIAAS_MAX_VERSIONS)",
        "evicted m:3 to load m:4: 2 versions loaded (AIAAS_MAX_VERSIONS)",
    ]
    assert [r.__dict__["evictions"] for r in said] == [1, 2]
    assert served.version("1") is first and pool.load_version("m", "1") is first


def test_the_function_s_memory_caps_the_versions_loaded(
    wide: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """172 MB: ~4.8 MB for models beside the 150 MB runtime (10% headroom). A loaded version
    keeps ~1.2 MB (1 MB of weights, its arena), a load peaks at ~2.1 MB (a single file parsed,
    then copied): three fit, the fourth's load evicts the oldest not served."""
    pool = pool_of(wide, tmp_path, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="172")
    served = ServedModel(pool, "w@production", ttl=3600)
    served.current()
    with caplog.at_level(logging.INFO, "aiaas"):
        caplog.clear()  # only this block's lines
        for version in ("2", "3", "4"):
            served.version(version)
    assert pool.evictions == 1
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("evicted")]
    assert line.startswith("evicted w:2 to load w:4: its load needs ~2 MB beside the ~4 MB")
    assert line.endswith("5 MB usable of the function's memory")
    assert served.version("3").manifest.version == "3" and pool.evictions == 1


def test_the_cap_is_a_setting_with_a_default_and_a_floor() -> None:
    assert RuntimeSettings.from_env({}).max_versions == DEFAULT_MAX_VERSIONS == 8
    assert RuntimeSettings.from_env({"AIAAS_MAX_VERSIONS": "12"}).max_versions == 12
    with pytest.raises(AiaasError, match=r"AIAAS_MAX_VERSIONS must be 2 or more .*; got 1"):
        RuntimeSettings.from_env({"AIAAS_MAX_VERSIONS": "1"})
    memory = RuntimeSettings.from_env({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3008"}).memory_mb
    assert memory == 3008 and RuntimeSettings.from_env({}).memory_mb == 0


def test_a_load_that_cannot_fit_beside_the_alias_s_versions_is_said(
    wide: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """168 MB: ~1.2 MB beside the runtime. The alias's version stays (its `Routed` holds it):
    the pinned version loads anyway, and the line says it may run out, with the numbers."""
    pool = pool_of(wide, tmp_path, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="168")
    served = ServedModel(pool, "w@production", ttl=3600)
    with caplog.at_level(logging.WARNING, "aiaas"):
        caplog.clear()  # only this block's lines (the aiaas logger may be at INFO already)
        served.current()
        assert served.version("2").manifest.version == "2"
    assert pool.evictions == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"loading w:{version} needs ~2 MB beside the ~{kept} MB an alias's versions hold, 1 MB "
        "usable of the function's memory: it may run out (raise MemorySize)"
        for version, kept in (("1", 0), ("2", 1))
    ]


def test_an_alias_moved_onto_a_split_keeps_its_new_main_while_its_canary_loads(
    six: Registry, tmp_path: Path, mocker: MockerFixture
) -> None:
    # At the floor (2), moving an alias from m:4 onto m:5 + m:6 loaded m:5, then evicted it to
    # load m:6 (m:4 was still "served"): m:5 answered from outside the pool, unaccounted, and
    # was loaded again at the next refresh, a second copy beside the first.
    six.set_alias("m", "split", "4")
    pool = pool_of(six, tmp_path, AIAAS_MAX_VERSIONS="2")
    loads = mocker.spy(pool.cache, "source")
    served = ServedModel(pool, "m@split", ttl=3600)
    assert served.current().manifest.version == "4"
    six.set_alias_weights("m", "split", {"5": 0.5, "6": 0.5})
    routed = served.routed()  # the directory store tells the alias changed: refreshed now
    assert [v.manifest.version for v in routed.versions()] == ["5"]  # its canary loads aside
    assert served.warmer.wait(10)
    routed = served.routed()
    assert [v.manifest.version for v in routed.versions()] == ["5", "6"]
    assert pool.load_version("m", "5") is routed.main
    assert loads.call_count == 3  # m:4, m:5, m:6: each once


@pytest.mark.parametrize(
    "limit", [{"AIAAS_MAX_VERSIONS": "2"}, {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "172"}]
)
def test_first_requests_for_several_versions_at_once_stay_within_the_bounds(
    wide: Registry, tmp_path: Path, mocker: MockerFixture, limit: dict[str, str]
) -> None:
    """Each load made room for itself alone, before the others landed: 4 first requests for 4
    versions at once left 4 loaded under AIAAS_MAX_VERSIONS=2 (9.7 MB of 7.5 usable over HTTP),
    until some later load made room again. The loads are held until all four have made room
    (the sessions themselves are built as ever)."""
    pool = pool_of(wide, tmp_path, **limit)
    together = threading.Barrier(4)
    build = LoadedModel

    def held(*args: object, **kwargs: object) -> LoadedModel:
        together.wait(10)
        return build(*args, **kwargs)  # type: ignore[arg-type]

    mocker.patch("functions.runtime.pool.LoadedModel", side_effect=held)
    gone: list[tuple[str, str]] = []
    pool.on_evict = lambda name, version: gone.append((name, version))
    threads = [threading.Thread(target=pool.load_version, args=("w", str(v))) for v in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = [key for key in pool._models]
    resident = sum(resident_bytes(m.manifest) for m in pool._models.values())
    assert len(loaded) <= 3 and resident <= pool.usable_bytes  # ~4.8 MB usable at 172 MB
    if "AIAAS_MAX_VERSIONS" in limit:
        assert len(loaded) == 2
    assert len(gone) == pool.evictions == 4 - len(loaded)  # each counted, as one evicted so


def test_a_function_too_small_for_any_model_says_so_once_with_the_memory_to_give_it(
    six: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Lambda's minimum, 128 MB, is under the ~150 MB runtime plus headroom: each load said
    "-35 MB usable of the function's memory". Its versions still load (one at a time)."""
    with caplog.at_level(logging.WARNING, "aiaas"):
        caplog.clear()  # only this block's lines (the aiaas logger may be at INFO already)
        pool = pool_of(six, tmp_path, AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128")
        served = ServedModel(pool, "m@production", ttl=3600)
        assert served.current().manifest.version == "1"
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == (
        "a function of 128 MB has no memory for models beside the ~150 MB the runtime takes "
        "and 10% headroom: each load evicts every version no alias serves, and it may run out; "
        "raise MemorySize (178 MB leaves 10 MB)"
    )
    assert pool.usable_bytes == 0 and not any(" -" in line for line in said)  # no "-35 MB"
