"""`ObjectStore.list_files`: the keys directly in a folder whose names begin a prefix, and the
batch run that uses it. A run's check that no other input shares its output key listed the
model's whole input folder, subfolders too, every run: inputs never expire, so it grew with
every file ever dropped (1,000 keys a ListObjectsV2 request on S3, quadratic over a folder's
life). It now lists only the names that can share the output: one request however full."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from functions.runtime.batch.layout import OutputShared, parse_input_key
from functions.runtime.batch.run import check_sole_writer
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore


def test_a_folders_own_files_by_the_start_of_their_names(store: ObjectStore) -> None:
    for key in ("in/rows.csv", "in/rows.csv.gz", "in/rowsx.csv", "in/other.csv", "in/sub/rows.csv"):
        store.put_bytes(key, b"")
    store.put_bytes("in2/rows.csv", b"")  # a folder whose name begins the same
    assert store.list_files("in", "rows.") == ["in/rows.csv", "in/rows.csv.gz"]
    assert store.list_files("in", "rows") == ["in/rows.csv", "in/rows.csv.gz", "in/rowsx.csv"]
    assert store.list_files("in") == [
        "in/other.csv",
        "in/rows.csv",
        "in/rows.csv.gz",
        "in/rowsx.csv",
    ]  # not in/sub/rows.csv: a subfolder's
    assert store.list_files("in", "none") == []
    assert store.list_files("missing", "rows.") == []
    assert store.list_files("in/rows.csv") == []  # a file, not a folder


def test_a_directory_stores_temp_and_lock_files_are_not_listed(store: ObjectStore) -> None:
    store.put_bytes("in/rows.csv", b"a")
    _, etag = store.read_versioned("in/rows.csv")
    store.put_bytes("in/rows.csv", b"b", if_match=etag)  # a directory store's lock file
    if isinstance(store, LocalStore):
        assert any(p.name.startswith(".tmp-") for p in (store.root / "in").iterdir())
    assert store.list_files("in", "") == ["in/rows.csv"]
    assert store.list_files("in", ".tmp-") == []


def test_the_twin_check_lists_the_names_alone_in_one_request(s3_store: S3Store) -> None:
    folder = "batch/m/input"
    days = [f"{folder}/day-{i:04}.csv" for i in range(1_010)]  # past one ListObjectsV2 page,
    with ThreadPoolExecutor(8) as pool:  # as a year of daily drops is (written 8 at a time)
        list(pool.map(lambda key: s3_store.put_bytes(key, b"x\n1\n"), days))
    s3_store.put_bytes(f"{folder}/old/rows.csv.gz", b"")  # a subfolder's: writes elsewhere
    s3_store.put_bytes(f"{folder}/rows.csv", b"x\n1\n")
    asked: list[dict[str, Any]] = []

    def listed(params: dict[str, Any], **_: Any) -> None:
        asked.append(params)

    s3_store.client.meta.events.register("provide-client-params.s3.ListObjectsV2", listed)
    new = parse_input_key(f"{folder}/rows.csv")
    assert new is not None
    check_sole_writer(s3_store, new)  # no twin: the subfolder's file is not one
    assert len(asked) == 1
    s3_store.put_bytes(f"{folder}/rows.csv.gz", b"")
    with pytest.raises(OutputShared, match=r"rows\.csv and batch/m/input/rows\.csv\.gz would"):
        check_sole_writer(s3_store, new)
    npy = parse_input_key(f"{folder}/a.npy")
    assert npy is not None
    s3_store.put_bytes(f"{folder}/a.NPY", b"")  # both write a.npz
    with pytest.raises(OutputShared, match=r"batch/m/input/a\.NPY would both be scored into"):
        check_sole_writer(s3_store, npy)
    assert len(asked) == 3
