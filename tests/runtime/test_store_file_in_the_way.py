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
