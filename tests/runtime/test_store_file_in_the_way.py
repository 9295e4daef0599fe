"""A file where the directory store needs a folder: the error names that file. Before, a write
whose own folder was a file said only "File exists" (from the folder's mkdir), which reads as
if the object itself existed: data capture logged its dropped lines that way."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import StoreError
from functions.runtime.store import LocalStore, ObjectExists


@pytest.mark.parametrize(
    ("blocking", "key"),
    [
        ("capture/m/1/2026-12-02", "capture/m/1/2026-12-02/040500-w-000001.jsonl"),  # its folder
        ("capture", "capture/m/1/2026-12-02/040500-w-000001.jsonl"),  # a folder above it
    ],
)
def test_a_file_in_the_way_of_a_write_is_named(tmp_path: Path, blocking: str, key: str) -> None:
    root = tmp_path / "store"
    (root / blocking).parent.mkdir(parents=True, exist_ok=True)
    (root / blocking).write_bytes(b"not a folder")
    store = LocalStore(root)
    with pytest.raises(StoreError) as caught:
        store.put_bytes(key, b"{}\n", if_absent=True)
    assert not isinstance(caught.value, ObjectExists)
    assert f"{blocking!r} is a file where a folder should be" in caught.value.message
    with pytest.raises(StoreError, match="is a file where a folder should be"):
        store.get_bytes(key)
    assert (root / blocking).read_bytes() == b"not a folder"  # left as it was


def test_keys_that_block_each_other_are_named_and_a_folder_is_no_object(
    tmp_path: Path,
) -> None:
    """Batch inputs `a.csv` then `a.csv/b.csv` (S3 holds both): KeyClash, which the control
    plane's jobs answer as the caller's (test_control_job_names.py); and `x.csv`, only a folder
    of `x.csv/y.csv`, is no object (a job read 'pending': head gave the folder's stat)."""
    from functions.runtime.errors import KeyClash, NotFound

    store = LocalStore(tmp_path / "store")
    store.put_bytes("batch/m/input/a.csv", b"f\n1\n")
    with pytest.raises(KeyClash) as caught:
        store.put_bytes("batch/m/input/a.csv/b.csv", b"f\n1\n")
    assert caught.value.clash == (
        "cannot use 'batch/m/input/a.csv/b.csv': 'batch/m/input/a.csv' is a file where a folder "
        "should be (a directory store cannot hold both keys; S3 can)"
    )
    store.put_bytes("batch/m/input/x.csv/y.csv", b"f\n1\n")
    with pytest.raises(NotFound):
        store.head("batch/m/input/x.csv")
    with pytest.raises(KeyClash, match=r"'batch/m/input/x\.csv' is a folder of other keys"):
        store.put_bytes("batch/m/input/x.csv", b"f\n1\n")
