"""The pool's load locks as versions are evicted under concurrent loads."""

from __future__ import annotations

import threading
from pathlib import Path

from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear


class _HeldAtTheDoor:
    """A version's load lock whose first taker stops before taking it, until `go` is set: a
    request that has looked the lock up and not yet taken it (a thread switch between the two)."""

    def __init__(self, at_door: threading.Event, go: threading.Event) -> None:
        self._lock, self._at_door, self._go, self._first = threading.Lock(), at_door, go, True

    def locked(self) -> bool:
        return self._lock.locked()

    def __enter__(self) -> None:
        if self._first:
            self._first = False
            self._at_door.set()
            assert self._go.wait(30)
        self._lock.acquire()

    def __exit__(self, *_: object) -> None:
        self._lock.release()


def test_a_load_that_looked_up_an_evicted_lock_leaves_later_evictions_working(
    tmp_path: Path,
) -> None:
    """A request looked up m:1's lock; before it took it, m:1 was loaded by another request
    and evicted (its lock dropped as unused). The first then loaded m:1 under the dropped lock:
    m:1 was served with no lock on record, and its next eviction raised KeyError (a 500 for the
    request that loaded another version)."""
    registry = Registry(LocalStore(tmp_path / "store"))
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"), max_versions=1)
    one, two = (publish_linear(registry, tmp_path, "m", v) for v in ("1", "2"))
    at_door, go = threading.Event(), threading.Event()
    pool._locks[("m", "1")] = _HeldAtTheDoor(at_door, go)  # type: ignore[assignment]
    late = threading.Thread(target=pool.load, args=(one,))
    late.start()
    assert at_door.wait(30)
    pool.load(one)
    pool.load(two)  # evicts m:1 and drops its lock: nobody holds it
    go.set()
    late.join(30)  # loads m:1 again, evicting m:2
    assert pool.load(two).manifest.version == "2"  # evicts m:1 again
    assert pool.load(one).manifest.version == "1"
