"""The directory store as a user's files: modes that follow the umask, and no lock file or
folder left of a deleted key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_local_files_respect_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    """Published models and batch outputs are ordinary files: `cp` would leave them so."""
    script = (
        "import os, sys; os.umask(int(sys.argv[2], 8))\n"
        "from functions.runtime.store import LocalStore\n"
        "store = LocalStore(sys.argv[1])\n"
        "store.put_bytes('models/m/versions/1/model.onnx', b'x')\n"
        "with store.open_write('batch/m/output/a.csv') as out:\n"
        "    out.write(b'y')\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), oct(umask)[2:]], check=True, cwd=REPO
    )
    for key in ("models/m/versions/1/model.onnx", "batch/m/output/a.csv"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == mode, key


def test_a_deleted_keys_lock_file_goes_and_writers_still_take_turns(tmp_path: Path) -> None:
    """A delete removes the key's lock file while holding it, so a pruned version leaves no
    folder. A writer already waiting on that file must not then hold it beside a writer that
    made a new one: holding_lock takes only the file still at the lock's name."""
    from functions.runtime.store import LocalStore
    from functions.runtime.store_parts import holding_lock, lock_file

    store, key = LocalStore(tmp_path / "s"), "models/m/versions/1/card/card.md"
    inside, overlaps, stop = [0], [0], threading.Event()

    def writer() -> None:
        while not stop.is_set():
            with holding_lock(store.root / key):
                inside[0] += 1
                overlaps[0] += inside[0] > 1
                time.sleep(0.0005)
                inside[0] -= 1

    def deleter() -> None:
        while not stop.is_set():
            store.put_bytes(key, b"card")
            store.delete(key)

    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as error:  # a writer losing its folder to the delete's prune
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=run, args=(writer,)) for _ in range(6)]
    threads.append(threading.Thread(target=run, args=(deleter,)))
    for thread in threads:
        thread.start()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join()
    assert (overlaps, errors) == ([0], [])
    store.put_bytes(key, b"card")
    with holding_lock(store.root / key):
        pass
    store.delete(key)
    assert not lock_file(store.root / key).exists()
    assert not (store.root / "models").exists()  # the folders went with it


def test_a_copy_is_a_new_object_unless_its_etag_is_kept(tmp_path: Path) -> None:
    # A job copied from uploads/ took its source's mtime, so its etag: two different files of
    # one size and mtime (cp -p, tar x, rsync -a) sent in turn to one job name, and the second
    # was skipped as already scored. Only a batch re-run's put-back keeps the etag.
    store = LocalStore(tmp_path / "store")
    store.put_bytes("uploads/a.csv", b"x\n1\n")
    source = store.root / "uploads/a.csv"
    os.utime(source, ns=(1_000_000_000, 1_000_000_000))
    store.copy("uploads/a.csv", "batch/m/input/a.csv")
    assert store.head("batch/m/input/a.csv").etag != store.head("uploads/a.csv").etag
    store.copy("uploads/a.csv", "batch/m/work/previous/a.csv", keep_etag=True)
    assert store.head("batch/m/work/previous/a.csv").etag == store.head("uploads/a.csv").etag
