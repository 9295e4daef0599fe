"""`ServedModel.varies_next` (asked by `aiaas serve` before an inline call) reads the alias record,
and the call that runs next need not read it again; a look left behind by a call that never
reached the model (a 400 before it) must not spare a much later call that read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.served import LOOKED_FRESH_S, ServedModel
from functions.runtime.store import LocalStore
from tests.runtime.test_pool_capacity import pool_of, publish_linear


@pytest.fixture
def two(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, "m", version, seed=int(version))
    registry.set_alias("m", "production", "1")
    return registry


def test_a_look_left_behind_does_not_hide_a_later_promotion(two: Registry, tmp_path: Path) -> None:
    served = ServedModel(pool_of(two, tmp_path), "m@production", ttl=3600)
    assert served.current().manifest.version == "1"
    assert served.varies_next is False  # looked: the record unchanged (a call failed after it)
    time.sleep(LOOKED_FRESH_S * 3)
    two.set_alias("m", "production", "2")
    assert served.current().manifest.version == "2"  # read again: the look was stale


def test_the_call_right_after_a_look_does_not_read_the_record_again(
    two: Registry, tmp_path: Path
) -> None:
    served = ServedModel(pool_of(two, tmp_path), "m@production", ttl=3600)
    assert served.current().manifest.version == "1"
    assert served.varies_next is False
    assert served.current().manifest.version == "1"
    assert served._looked == 0.0  # taken by that call; the next one reads the record
