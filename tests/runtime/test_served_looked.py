"""`ServedModel.varies_next` (asked by `aiaas serve` before an inline call) reads the alias record,
and the call that runs next need not read it again; a look left behind by a call that never
reached the model (a 400 before it) must not spare a much later call that read."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.served import LOOKED_FRESH_S, ServedModel
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear
from tests.runtime.test_pool_capacity import pool_of


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
    assert served._looked is None  # taken by that call; the next one reads the record


class _PausingRef:
    """The served ref, whose `version` (read in `routed` after `_current`) holds the thread
    named "offloaded" until told to go on: an offloaded call paused mid-call."""

    def __init__(self, ref: object, paused: threading.Event, go: threading.Event) -> None:
        self._ref, self.paused, self.go = ref, paused, go

    def __getattr__(self, name: str) -> object:
        return getattr(self._ref, name)

    @property
    def version(self) -> str:
        if threading.current_thread().name == "offloaded":
            self.paused.set()
            self.go.wait(5)
        return self._ref.version  # type: ignore[attr-defined, no-any-return]


def test_an_offloaded_call_does_not_take_the_loops_look(two: Registry, tmp_path: Path) -> None:
    """An offloaded call read the version served, paused; the alias moved and another call
    refreshed; the loop's probe then looked (the record unchanged since that refresh), and the
    paused call took that look for its own and answered with the version before the promotion
    (review_rev9 1)."""
    served = ServedModel(pool_of(two, tmp_path), "m@production", ttl=3600)
    assert served.current().manifest.version == "1"
    paused, go = threading.Event(), threading.Event()
    served.ref = _PausingRef(served.ref, paused, go)  # type: ignore[assignment]
    answered: dict[str, str] = {}

    def offloaded() -> None:
        answered["version"] = served.routed().main.manifest.version

    thread = threading.Thread(target=offloaded, name="offloaded")
    thread.start()
    assert paused.wait(5)
    two.set_alias("m", "production", "2")  # the promotion, before its answer
    assert served.routed().main.manifest.version == "2"  # another call refreshes
    assert served.varies_next is False  # the loop's probe: a fresh look, for its own call
    go.set()
    thread.join(5)
    assert answered["version"] == "2"
