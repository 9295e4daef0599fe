"""Racing alias updates on both stores: every promotion lands in the alias history.

Four processes promote one alias ten times each at once. Before compare-and-swap, one read
the record, another wrote, and the first overwrote it: promotions vanished from the history.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from functions.runtime.aliases import ALIAS_HISTORY
from functions.runtime.registry import Registry, alias_key
from functions.runtime.store import (
    MULTIPART_THRESHOLD,
    ObjectChanged,
    ObjectExists,
    ObjectStore,
    open_store,
)
from tests.publishing import publish_linear

PROCESSES, PROMOTIONS = 4, 10


def promote_many(store_uri: str, worker: int) -> None:
    registry = Registry(open_store(store_uri))
    for index in range(PROMOTIONS):
        # A share of its own per move: a move to where the alias already is records nothing.
        share = (worker * PROMOTIONS + index + 1) / 100
        weights = {"1": round(1 - share, 2), "2": share}
        registry.set_alias_weights("m", "production", weights, actor=f"p{worker}-{index}")


def test_racing_promotions_lose_nothing(registry: Registry, tmp_path: Path) -> None:
    assert PROCESSES * PROMOTIONS < ALIAS_HISTORY  # every change must fit in the history
    publish_linear(registry, tmp_path, "m", "1")
    publish_linear(registry, tmp_path, "m", "2")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=context) as pool:
        list(pool.map(promote_many, [registry.store.uri] * PROCESSES, range(PROCESSES)))
    record = registry.alias_record("m", "production")
    assert record is not None
    actors = [record["updated_by"]] + [entry["updated_by"] for entry in record["history"]]
    expected = {f"p{w}-{i}" for w in range(PROCESSES) for i in range(PROMOTIONS)}
    assert sorted(actors) == sorted(expected)  # each once: none lost, none doubled
    for worker in range(PROCESSES):  # and each process's own changes in its order
        mine = [a for a in reversed(actors) if a.startswith(f"p{worker}-")]
        assert mine == [f"p{worker}-{i}" for i in range(PROMOTIONS)]


def test_conditional_writes(store: ObjectStore) -> None:
    key = "models/m/aliases/production.json"
    store.put_bytes(key, b"one", if_absent=True)
    with pytest.raises(ObjectExists):
        store.put_bytes(key, b"two", if_absent=True)
    data, etag = store.read_versioned(key)
    assert data == b"one"
    store.put_bytes(key, b"two", if_match=etag)
    with pytest.raises(ObjectChanged):
        store.put_bytes(key, b"three", if_match=etag)  # the etag of a version since replaced
    assert store.get_bytes(key) == b"two"
    assert [k for k in store.list_keys("models/m") if "lock" in k] == []  # no lock file shows


def test_a_corrupt_alias_is_replaced_by_a_promotion(registry: Registry, tmp_path: Path) -> None:
    publish_linear(registry, tmp_path, "m", "1")
    registry.store.put_bytes(alias_key("m", "production"), b"[1,2")
    record = registry.set_alias("m", "production", "1", actor="ops")
    assert (record["version"], record["history"]) == ("1", [])
    assert registry.alias("m", "production") == "1"


@pytest.mark.parametrize("size", [3, MULTIPART_THRESHOLD + 1024], ids=["put", "multipart"])
def test_staged_objects_publish_and_delete_only_over_the_version_read(
    store: ObjectStore, size: int
) -> None:
    """What a batch run's commit relies on (`batch/commit.py`), on both stores, for a small
    object and a big one: S3 checks If-Match on the multipart completion as on a PUT, where the
    tests' moto had let a stale commit of a big output replace the newer object."""
    key = "batch/m/output/a.csv"
    one, two = b"1" * size, b"2" * size
    assert store.version(key) is None
    with store.open_staged(key) as staged:
        staged.file.write(one)
        first = staged.publish(None)  # create only: absent
        assert store.version(key) == first and store.get_bytes(key) == one
        with pytest.raises(ObjectChanged):
            staged.publish(None)  # it exists now
        second = staged.publish(first)  # the same bytes, again
        assert store.version(key) == second
    with store.open_staged(key) as other:
        other.file.write(two)
        with pytest.raises(ObjectChanged):
            other.publish("0" * 32)  # not the version there
        assert store.get_bytes(key) == one  # refused: nothing replaced
        third = other.publish(second)
    assert store.get_bytes(key) == two
    with pytest.raises(ObjectChanged):
        store.delete(key, if_version=first)  # replaced by "two" since
    store.delete(key, if_version=third)
    assert not store.exists(key)
    with store.open_staged(key) as late:  # over a version deleted since: no object is made
        late.file.write(one)
        with pytest.raises(ObjectChanged):
            late.publish(third)
    assert not store.exists(key)
    assert [k for k in store.list_keys("batch") if "tmp" in k] == []  # no staged leftovers
