"""One download of a model cache entry at a time, across the processes sharing the cache.

`aiaas serve --workers N` starts N processes on one cache directory, and each loads the same
models at once: every worker downloaded every file into a `.part-*` of its own, N times the
bandwidth and N times the disk of the model during the start (a 1 GB model and 2 workers
filled a pod's 2 GiB emptyDir). Now the download of an entry holds an exclusive flock on
`.lock-<entry>` in the cache directory; the others wait for it, then find the entry renamed
into place and check its sha256 themselves (never a wrong model served), or, where the
download failed or its process died (the kernel lets go of a flock however its holder ends:
kill -9, the OOM killer), one of them downloads it.

A waiter keeps the download's deadline (download_deadline.py): past it, it is the same
DownloadTooSlow (a 503 with Retry-After) a download past it is. The holder removes the lock
file as it lets go, and a lock is only taken on the file still at its path (one removed
meanwhile is opened afresh), so two processes never both hold it. A cache hit takes no lock;
a miss pays an open, a flock and an unlink (microseconds, beside a download). Where the lock
file cannot be made (a read-only cache) the download goes on unlocked and says why it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from functions.runtime.download_deadline import Deadline, DownloadTooSlow, current

POLL_S = 0.05  # how often a waiter tries the lock: the time a finished download's file waits
PREFIX = ".lock-"


@contextlib.contextmanager
def one_download(directory: Path, name: str, where: str, size: int) -> Iterator[bool]:
    """Held while this process downloads the cache entry `name` (`size` bytes, from `where`);
    yields whether it waited for another's download first (whose entry may now be there)."""
    path = directory / f"{PREFIX}{name}"
    fd, waited = _acquire(path, current(size), where, size)
    try:
        yield waited
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):  # ours: only the holder removes it
                path.unlink()
            os.close(fd)


def _acquire(
    path: Path, deadline: Deadline | None, where: str, size: int
) -> tuple[int | None, bool]:
    started, waited = time.monotonic(), False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return None, waited  # no lock file here: the download itself says what is wrong
        try:
            while not _try_lock(fd):
                waited = True
                if deadline is not None and deadline.passed():
                    raise _too_slow(deadline, where, size, time.monotonic() - started)
                time.sleep(POLL_S)
            if _still_at(fd, path):
                return fd, waited
        except OSError:  # no flock on this file system: unlocked, as before
            os.close(fd)
            return None, waited
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed it as it let go: the next lock is on a new file


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _still_at(fd: int, path: Path) -> bool:
    try:
        return path.stat().st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _too_slow(deadline: Deadline, where: str, size: int, waited_s: float) -> DownloadTooSlow:
    name = where.rsplit("/", 1)[-1]
    return DownloadTooSlow(
        f"{where}: waited {waited_s:.1f} s for another process's download of it ({size:,} "
        f"bytes) into the model cache, past the download's deadline of {deadline.seconds:.1f} s "
        f"({deadline.why}): S3 or the network is sending too slowly; try again",
        public_message=f"{name} could not be read from the model store in time (another "
        "process is still downloading it); retry",
    )
