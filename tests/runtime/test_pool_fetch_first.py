"""A version that cannot be fetched evicts nothing: the pool fetches (and verifies) before it
makes room, where the files land on disk. Before, a broken pinned version asked for beside
good ones under AIAAS_MAX_VERSIONS=2 evicted a good one on every request, which then loaded
again on its own next request: a reload per request for the callers of the good versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pytest_mock import MockerFixture

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear
from tests.runtime.test_pool_capacity import pool_of


def test_a_version_that_fails_its_fetch_evicts_nothing(
    tmp_path: Path, mocker: MockerFixture
) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1")
    (broken,) = (tmp_path / "store").rglob("3/model.onnx")
    broken.write_bytes(broken.read_bytes()[:-8] + b"corrupt!")  # its sha256 no longer matches
    pool = pool_of(registry, tmp_path, AIAAS_MAX_VERSIONS="2")
    served = ServedModel(pool, "m@production", ttl=3600)
    x = {"x": np.ones((1, 4), np.float32)}
    served.current()
    served.version("2").predict(x)
    fetches = mocker.spy(pool.cache, "source")
    for _ in range(3):  # the broken version asked for, the good one between
        with pytest.raises(AiaasError):
            served.version("3")
        served.version("2").predict(x)
    assert pool.evictions == 0
    assert [call.args[0].version for call in fetches.call_args_list] == ["3", "3", "3"]
