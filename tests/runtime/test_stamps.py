"""Stamps through held descriptors: every way the store (or a person) changes a key reads as a
change, exactly as a stat of the path would; not held where that would not be exact."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from functions.runtime.stamps import HeldStamps, filesystem_type
from functions.runtime.store import LocalStore


def replace(path: Path, text: str) -> None:
    """What the store does: a new file renamed over the key."""
    temporary = path.with_name(f".tmp-{path.name}")
    temporary.write_text(text)
    os.replace(temporary, path)


@pytest.fixture
def stamps(tmp_path: Path) -> HeldStamps:
    held = HeldStamps(str(tmp_path))
    if not held.held_ok:
        pytest.skip(f"{filesystem_type(str(tmp_path))} is not a filesystem descriptors are held on")
    return held


def test_a_key_replaced_deleted_or_written_in_place_reads_as_changed(
    stamps: HeldStamps, tmp_path: Path
) -> None:
    key = tmp_path / "production.json"
    assert stamps.stamp(str(key)) == ()  # missing
    replace(key, '{"version": "1"}')
    first = stamps.stamp(str(key))
    assert first != () and stamps.stamp(str(key)) == first  # held, unchanged
    replace(key, '{"version": "2"}')  # same size, within the same clock tick: a new inode
    second = stamps.stamp(str(key))
    assert second not in ((), first) and stamps.stamp(str(key)) == second
    with key.open("a") as edited:  # in place: mtime and size
        edited.write(" ")
    third = stamps.stamp(str(key))
    assert third not in (second, ())
    key.unlink()
    assert stamps.stamp(str(key)) == ()


def test_a_folder_reads_as_changed_when_an_entry_is_added(
    stamps: HeldStamps, tmp_path: Path
) -> None:
    folder = tmp_path / "versions"
    folder.mkdir()
    before = stamps.stamp(str(folder))
    (folder / "2").mkdir()
    assert stamps.stamp(str(folder)) not in (before, ())


def test_a_file_with_two_links_is_stamped_by_its_path(stamps: HeldStamps, tmp_path: Path) -> None:
    key = tmp_path / "production.json"
    replace(key, "1")
    os.link(key, tmp_path / "backup.json")  # replacing the key leaves the old inode linked
    first = stamps.stamp(str(key))
    replace(key, "2")
    assert stamps.stamp(str(key)) not in (first, ())


def test_descriptors_are_closed_once_dropped(stamps: HeldStamps, tmp_path: Path) -> None:
    key = tmp_path / "production.json"
    replace(key, "1")
    open_before = len(os.listdir("/proc/self/fd"))
    for text in ("2", "3", "4", "5"):
        stamps.stamp(str(key))
        replace(key, text)
    stamps.stamp(str(key))
    assert len(os.listdir("/proc/self/fd")) <= open_before + 1


def test_only_local_filesystems_hold_descriptors(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 27 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n"
        "30 22 0:40 / /srv/store rw,relatime shared:1 - overlay overlay rw,lowerdir=/a\n"
        "31 22 0:41 / /mnt/s3 rw - fuse.s3fs s3fs rw\n"
    )
    assert filesystem_type("/home/me/store", str(mountinfo)) == "ext4"
    assert filesystem_type("/srv/store/models", str(mountinfo)) == "overlay"
    assert filesystem_type("/srv/storefront", str(mountinfo)) == "ext4"
    assert filesystem_type("/mnt/s3", str(mountinfo)) == "fuse.s3fs"
    assert filesystem_type("/x", str(tmp_path / "absent")) is None


def test_the_store_stamps_through_them(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("models/m/aliases/production.json", b'{"version": "1"}')
    first = store.stamp("models/m/aliases/production.json")
    store.put_bytes("models/m/aliases/production.json", b'{"version": "2"}')
    assert store.stamp("models/m/aliases/production.json") not in (first, ())


def test_descriptors_of_deleted_files_are_closed_when_a_new_one_is_held(
    tmp_path: Path,
) -> None:
    """A pruned version's manifest is never stamped again once its version left the pool: its
    descriptor stayed open, one a version published and pruned, until MAX_HELD (1,024)."""
    store = LocalStore(tmp_path / "store")
    if not HeldStamps(store.uri).held_ok:
        pytest.skip(f"{filesystem_type(store.uri)} is not a filesystem descriptors are held on")
    keys = [f"models/m/versions/{v}/manifest.json" for v in range(1, 21)]
    for key in keys:
        store.put_bytes(key, b"{}")
        assert store.stamp(key)  # held
    assert len(deleted_held(store.uri)) == 0
    store.delete_many(keys[:-1])  # pruned; none stamped again
    assert len(deleted_held(store.uri)) == 19
    time.sleep(1.0)  # stamps.SWEEP_S: at most one sweep a second
    store.put_bytes("models/m/versions/21/manifest.json", b"{}")  # the next version
    assert store.stamp("models/m/versions/21/manifest.json")
    assert deleted_held(store.uri) == []
    assert store.stamp(keys[-1]) and store.stamp(keys[0]) == ()  # the rest as before


def deleted_held(root: str) -> list[str]:
    """This process's descriptors on files under `root` that were deleted."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(root) and target.endswith(" (deleted)"):
            found.append(target)
    return found
