"""Stamps of the directory store's keys, read through descriptors held open.

`aiaas serve` checks the alias record of every served model on every request (served.py's
`RegistryWatch`), so a promote from any process is served from the next request on. A `stat`
of the key's path costs ~10 us a request in the server (a path walk, then Python's stat
result); `fstat` of a descriptor held on the file ~5 us less. It is as exact because the store
only ever replaces a key by renaming a new file over it, or deletes it: either drops the old
file's link count to 0 at once, which `fstat` reports, and the next stamp looks the path up
again (and so reads the new file's inode: a change). A write in place changes the mtime and
size, as before. Held only where that holds:
- on local filesystems (overlayfs keeps a lower layer's file linked when the merged path is
  replaced; FUSE and network filesystems may answer `fstat` from stale attributes);
- for files with one link (a second link would keep the count above 0).
Anywhere else every stamp is a `stat` of the path, as before. On top of this, the store keeps a
key's stamp while no write through any store on its root has finished (generation.py), so a
request between writes makes no system call at all (`KeptStamps`).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from time import monotonic

from functions.runtime.generation import Generation
from functions.runtime.store_api import check_key

Stamp = tuple[int, ...]  # store.Stamp

LOCAL_FILESYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs"})
MAX_HELD = 1024  # descriptors held per store at most (a handful in practice: one per alias)
SWEEP_S = 1.0  # a new descriptor drops those of deleted files first, at most this often
MAX_KEPT = 2048  # keys whose path and stamp a store keeps (a few per model in use)
# A kept stamp is read again (an fstat) at most this often though the write number is unchanged:
# a key deleted or replaced by hand (`rm -rf models/x`, an alias record edited) bumps no number,
# and was served from memory until the alias TTL (60 s), per worker. Once a second a key costs
# nothing a request (a clock read) and such a change is seen within a second.
RECHECK_S = 1.0


def filesystem_type(path: str, mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The type of the filesystem `path` (absolute, resolved) is on; None where unknown."""
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:  # not Linux
        return None
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        mount = fields[4].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):  # the innermost mount holding the path
            best, kind = mount, fields[fields.index("-", 6) + 1]
    return kind


class _Held:
    """An open descriptor, closed once no thread uses it (one may be reading it right now)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __del__(self) -> None:
        os.close(self.fd)


class HeldStamps:
    """(inode, mtime, size) of paths under one store root: `()` for a missing path."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._held_ok: bool | None = None  # read from the mount table on the first look-up
        self._held: dict[str, _Held] = {}
        self._swept = float("-inf")  # time.monotonic() of the last `_sweep`

    @property
    def held_ok(self) -> bool:
        """Whether descriptors are held under this root (~0.1 ms to find out, done once)."""
        if self._held_ok is None:
            self._held_ok = filesystem_type(self.root) in LOCAL_FILESYSTEMS
        return self._held_ok

    def stamp(self, path: str) -> Stamp:
        held = self._held.get(path)
        if held is not None:
            try:
                found = os.fstat(held.fd)
            except OSError:
                found = None
            if found is not None and found.st_nlink:
                return (found.st_ino, found.st_mtime_ns, found.st_size)
            self._held.pop(path, None)  # replaced or deleted: look the path up again
        return self._look_up(path)

    def _look_up(self, path: str) -> Stamp:
        if self.held_ok:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return ()
            except OSError:  # unreadable, say: a stat may still tell
                pass
            else:
                return self._hold(path, _Held(fd))
        try:
            found = os.stat(path)  # noqa: PTH116 - a string path: pathlib costs ~3x the stat
        except OSError:  # missing, or unreadable: either way not what was stamped before
            return ()
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _hold(self, path: str, held: _Held) -> Stamp:
        found = os.fstat(held.fd)
        if not stat.S_ISREG(found.st_mode) or found.st_nlink == 1:
            if len(self._held) >= MAX_HELD:
                self._held.clear()
            else:
                self._sweep()
            self._held[path] = held
        return (found.st_ino, found.st_mtime_ns, found.st_size)

    def _sweep(self) -> None:
        """Drop the descriptors of files deleted since (a pruned version's manifest, which no
        request stamps again once its version left the pool): a long-lived server held one per
        version pruned, a deleted file's inode each, until MAX_HELD (found soaking `aiaas
        serve`: its shadow replay process at 42 descriptors after 30 versions, 27 of them)."""
        now = time.monotonic()
        if now - self._swept < SWEEP_S:
            return
        self._swept = now
        for path, held in list(self._held.items()):
            try:
                deleted = os.fstat(held.fd).st_nlink == 0
            except OSError:
                deleted = True
            if deleted:
                self._held.pop(path, None)  # closed once no thread reads it (`_Held`)


class KeptStamps:
    """A directory store's stamps by key: each key's path checked once (this runs on every
    request), its stamp kept while no write through any store on the root finished since.

    A kept stamp is read again after `RECHECK_S` all the same: a change made by hand (a model's
    folder deleted) writes no number, and is seen within that.

    Bounded: every key ever stamped was kept for the life of the process, and a pinned request
    for a version never published stamps that version's manifest (unpublished.py), so a caller
    sending version names that do not exist (a scanner) grew the server ~500 bytes a name,
    never freed. Past `MAX_KEPT` keys all are dropped at once, as `HeldStamps` drops its
    descriptors: a key in use costs one `stat` on its next request, then is kept again.
    """

    def __init__(self, uri: str, generation: Generation) -> None:
        self.uri = uri
        self._generation = generation
        self._held = HeldStamps(uri)
        self._paths: dict[str, str] = {}
        # key -> (generation, stamp, monotonic() until which it is kept)
        self._kept: dict[str, tuple[int, Stamp, float]] = {}

    def stamp(self, key: str) -> Stamp:
        # No write through any store on this root finished since the kept stamp was read: it
        # is still the key's, without a system call (generation.py). Looked for first, by key:
        # a kept stamp was read through a held descriptor (`held_ok`), and the path is not
        # needed (~0.2 us of every request's alias check).
        kept = self._kept.get(key)
        if kept is not None and kept[0] == self._generation.read() and monotonic() < kept[2]:
            return kept[1]
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= MAX_KEPT:
                self._paths.clear()
            path = self._paths[key] = f"{self.uri}/{check_key(key)}"
        if not self._held.held_ok:
            return self._held.stamp(path)
        generation = self._generation.read()
        until = monotonic() + RECHECK_S
        found = self._held.stamp(path)
        if generation is not None:
            if kept is None and len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[key] = (generation, found, until)  # with the number read before it
        return found
