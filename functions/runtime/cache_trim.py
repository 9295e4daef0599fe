"""Room in the model cache: the least recently used entries go, never one a process holds.

The cache (functions/runtime/cache.py) keeps one entry a version: `<sha256>.onnx`, or a folder
named by all its files' hashes. Left alone it grows with every version a long-lived `aiaas
serve` or a warm function ever loaded, until a new version no longer fits and loads from memory
(~3x its weights) and is downloaded again at every start. So when a version lacks room (or the
cache is past `AIAAS_CACHE_MAX_MB`) entries are removed, least recently used first (each hit
and fetch touches its entry's mtime), skipping:

- an entry a process holds: a process holds a shared flock on each entry it has loaded (taken
  before its hash check, let go when its pool drops the version), and a removal takes the
  exclusive lock first. A removed entry a session maps would free nothing while it lives;
- an entry used within GRACE_S, unless this process itself let it go (`released`): a process
  running older code, or one between a rename and its lock;
- anything else in the directory (`.part-*` downloads, `.graph-*` files, `metrics/`).

Removing an entry is safe for a session already created from it (onnxruntime has read the
model and maps the data files: an unlinked file stays until it is unmapped): a folder is
renamed aside (`.part-trim-*`, swept as a download's leftover) and then removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import stat
import threading
import time
import weakref
from collections.abc import Collection
from pathlib import Path

from functions.runtime.abandoned import hold

GRACE_S = 60.0
MB = 1024 * 1024
ENTRY_NAME = re.compile(r"[0-9a-f]{64}(\.onnx)?")
log = logging.getLogger("aiaas.runtime")


def touch(path: Path) -> None:
    """Mark an entry used now (its mtime): the least recently used go first."""
    with contextlib.suppress(OSError):  # removed meanwhile: nothing to mark
        os.utime(path)


def entry_bytes(path: Path) -> int:
    """The disk space an entry takes (a folder: all its files)."""
    if not path.is_dir():
        return _used(path)
    return sum(_used(Path(root) / name) for root, _, names in os.walk(path) for name in names)


def _used(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.lstat().st_blocks * 512
    return 0


def entries(directory: Path) -> list[tuple[float, Path]]:
    """(last used, path) of each cache entry in `directory`, least recently used first."""
    found = []
    with contextlib.suppress(OSError):
        for path in directory.iterdir():
            if ENTRY_NAME.fullmatch(path.name):
                with contextlib.suppress(OSError):
                    found.append((path.lstat().st_mtime, path))
    return sorted(found)


def trim(
    directory: Path,
    *,
    free: int = 0,
    most: int = 0,
    keep: Collection[Path] = (),
    released: Collection[Path] = (),
    why: str,
) -> int:
    """Remove least recently used entries of `directory` until its disk has `free` bytes free
    and (`most` > 0) its entries take `most` bytes at most; never one in `keep`, one a process
    holds, or one used within GRACE_S and not `released` by this process. Bytes removed."""
    listed = [(used, path, entry_bytes(path)) for used, path in entries(directory)]
    total, removed, cutoff = sum(size for _, _, size in listed), 0, time.time() - GRACE_S
    for used, path, size in listed:
        if _enough(directory, free, most, total):
            break
        if path in keep or (used > cutoff and path not in released) or not _remove(path):
            continue
        total, removed = total - size, removed + size
        log.info(
            "removed %s from the model cache %s (%.1f MB, least recently used): %s",
            path.name,
            directory,
            size / MB,
            why,
        )
    return removed


def remove_entry(path: Path, why: str) -> bool:
    """Remove one entry no process holds (a version pruned from the registry, which no request
    loads again: a trim would take it only once the disk or AIAAS_CACHE_MAX_MB runs short)."""
    size = entry_bytes(path)
    if not _remove(path):
        return False
    log.info("removed %s from the model cache %s (%.1f MB): %s", path.name, path.parent,
             size / MB, why)  # fmt: skip
    return True


def _enough(directory: Path, free: int, most: int, total: int) -> bool:
    if most and total > most:
        return False
    if not free:
        return True
    try:
        return shutil.disk_usage(directory).free >= free
    except OSError:
        return True  # nothing to measure: nothing removed for it


def _remove(path: Path) -> bool:
    """Remove `path` unless a process holds it (checked under the exclusive lock, which a
    process about to use it waits for, and then finds it gone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if not path.is_dir():
            path.unlink()
            return True
        aside = path.with_name(f".part-trim-{path.name[:12]}-{os.getpid()}")
        path.rename(aside)
    except OSError:  # held (BlockingIOError), or gone meanwhile
        return False
    finally:
        os.close(fd)
    shutil.rmtree(aside, ignore_errors=True)
    return True


class Holds:
    """The cache entries this process handed out and holds: one descriptor an entry (its
    shared flock), counted, until each hand-out is released; and the entries it let go."""

    def __init__(self) -> None:
        self._fds: dict[Path, tuple[int, int]] = {}  # entry: (descriptor, hand-outs)
        self._released: set[Path] = set()
        self._lock = threading.Lock()
        # Closed with the cache that holds them: `aiaas serve` retiring a function (its pool
        # dropped whole, nothing released) kept each entry's descriptor and lock for the
        # server's life, one more a model each reload, until EMFILE; and trim never removed them.
        weakref.finalize(self, _close_all, self._fds)

    def add(self, entry: Path, fd: int | None) -> Path:
        """`entry`, marked used now and held by `fd` (when one holds it) until `release`."""
        touch(entry)
        if fd is None:
            return entry
        with self._lock:
            self._released.discard(entry)
            old, count = self._fds.get(entry, (None, 0))
            if old is not None and os.fstat(old).st_ino == os.fstat(fd).st_ino:
                old, fd = fd, old  # already held: one descriptor an entry
            let_go(old)
            self._fds[entry] = fd, count + 1
        return entry

    def release(self, entry: Path) -> bool:
        """One hand-out of `entry` is over; whether that let it go (none other held)."""
        with self._lock:
            if entry not in self._fds:
                return False
            fd, count = self._fds.pop(entry)
            if count > 1:
                self._fds[entry] = fd, count - 1
                return False
            self._released.add(entry)
        os.close(fd)
        return True

    def released(self) -> set[Path]:
        with self._lock:
            return set(self._released)


def _close_all(fds: dict[Path, tuple[int, int]]) -> None:
    for fd, _ in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def hold_entry(entry: Path, *, folder: bool) -> int | None:
    """A descriptor holding `entry` (a shared flock: `trim` removes only what nobody holds), or
    None when there is none of that kind, or it was removed while we waited for the lock."""
    try:
        fd = hold(entry)  # waits only for a removal under way
    except OSError:
        return None
    try:
        now, held = entry.stat(), os.fstat(fd)
        if now.st_ino == held.st_ino and stat.S_ISDIR(held.st_mode) == folder:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def let_go(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)
