"""A big model published to a directory store is hashed once: its signature read takes the
sha256 alone (no part CRC32s, which only S3 uses), and the store's copy of the same unchanged
file is made by the kernel, not read through a hash again (file_digests.py, store_parts.py).
A file changed during the copy is refused; a filesystem the kernel cannot copy on gets the
copy through this process."""

from __future__ import annotations

import errno
import hashlib
import json
import os
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from functions.runtime import file_digests, store_parts
from functions.runtime import store as store_module
from functions.runtime.errors import StoreError
from functions.runtime.introspect import read_signature
from functions.runtime.refs import model_key
from functions.runtime.store import LocalStore
from tests import onnx_factory

PART = 16 * 1024 * 1024  # the default multipart part size


@pytest.fixture
def big(tmp_path: Path) -> Path:
    """An 18 MB single-file model: over the 16 MB multipart threshold."""
    return onnx_factory.big_add(tmp_path / "big.onnx", 4_500_000)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(store: LocalStore) -> list[str]:
    temp = store.root.rglob(".tmp-*")
    return [p.name for p in temp if not p.name.startswith(store_parts.KEPT_TEMP)]


def test_the_cli_publishes_to_a_directory_store_with_one_hash_and_no_crc32s(
    tmp_path: Path, big: Path, mocker: MockerFixture
) -> None:
    from infra.cli.main import main

    copied = mocker.spy(store_module, "copy_file")
    root = tmp_path / "store"
    assert main(["--store", str(root), "publish", str(big), "--name", "big"]) == 0

    stored = root / model_key("big", "1")
    manifest = json.loads((stored.parent / "manifest.json").read_text())
    assert stored.read_bytes() == big.read_bytes()
    assert manifest["file"]["sha256"] == sha256(big)
    # The model copied without a hash (the card's small files are hashed as they are copied),
    # its sha256 the signature read's, which took no CRC32s: a directory store uses none.
    assert copied.call_count == 1
    assert file_digests.known_sha256(big) == sha256(big)
    assert file_digests.known(big, PART) is None


def test_a_known_file_is_copied_whole_and_given_its_known_sha256(tmp_path: Path, big: Path) -> None:
    read_signature(big, part_checksums=False)
    store = LocalStore(tmp_path / "store")
    moved: list[int] = []
    staged = store.stage_file(big, "models/big/versions/1/model.onnx", progress=moved.append)
    staged.commit()
    assert (staged.sha256, staged.size) == (sha256(big), big.stat().st_size)
    assert (store.root / "models/big/versions/1/model.onnx").read_bytes() == big.read_bytes()
    assert sum(moved) == big.stat().st_size
    assert leftovers(store) == []


@pytest.mark.parametrize(
    "kernel",
    [
        pytest.param(OSError(errno.EXDEV, "cross-device"), id="refused"),
        pytest.param(0, id="ends-early"),  # a filesystem whose copy returns nothing
    ],
)
def test_where_the_kernel_cannot_copy_the_copy_goes_through_this_process(
    tmp_path: Path, big: Path, monkeypatch: pytest.MonkeyPatch, kernel: object
) -> None:
    def copy_file_range(*_: object) -> int:
        if isinstance(kernel, OSError):
            raise kernel
        return int(kernel)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "copy_file_range", copy_file_range, raising=False)
    read_signature(big, part_checksums=False)
    store = LocalStore(tmp_path / "store")
    staged = store.stage_file(big, "k")
    staged.commit()
    assert staged.sha256 == sha256(big)
    assert (store.root / "k").read_bytes() == big.read_bytes()


def test_a_file_changed_while_it_is_copied_is_refused_and_nothing_is_left(
    tmp_path: Path, big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_signature(big, part_checksums=False)
    monkeypatch.setattr(store_parts, "COPY_BYTES", 4 * 1024 * 1024)
    store = LocalStore(tmp_path / "store")

    def touch(_: int) -> None:  # another writer, between two of the kernel's copies
        with big.open("r+b") as handle:
            handle.seek(100)
            handle.write(b"\xff")
        stat = big.stat()
        os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    with pytest.raises(StoreError, match="changed while it was being published"):
        store.stage_file(big, "k", progress=touch)
    assert not (store.root / "k").exists()
    assert leftovers(store) == []


def test_a_file_changed_after_its_signature_read_is_hashed_as_it_is_copied(
    tmp_path: Path, big: Path
) -> None:
    read_signature(big, part_checksums=False)
    data = bytearray(big.read_bytes())
    data[-10] ^= 0xFF
    big.write_bytes(bytes(data))
    stat = big.stat()
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert file_digests.known_sha256(big) is None

    staged = LocalStore(tmp_path / "store").stage_file(big, "k")
    assert staged.sha256 == sha256(big)  # the new bytes', so the manifest's check refuses it
    staged.abort()


def test_an_s3_bound_read_still_takes_the_part_crc32s(big: Path) -> None:
    read_signature(big)  # part_checksums by default
    known = file_digests.known(big, PART)
    assert known is not None and len(known.crc32) == 2
    assert file_digests.known_sha256(big) == known.sha256
