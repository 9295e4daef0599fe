"""Temp files (and folders) whose writer died: found and removed without ever taking a live
writer's.

A writer holds a shared flock on its temp file or folder for as long as it writes; the kernel
drops the lock however the writer dies (kill -9, a crash, an OOM kill). A temp entry nobody
holds that has not been modified for ABANDONED_AFTER_S is a dead writer's: the wait covers a
writer between creating the entry and locking it. Used by the directory store (`.tmp-*`
beside objects: a publish killed midway) and the model cache (`.part-*`: a download stopped
midway).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

ABANDONED_AFTER_S = 60.0


def hold(path: Path | str) -> int:
    """A descriptor of `path` (a file or a folder) holding its writer's lock; close it to let go."""
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def hold_fd(fd: int) -> None:
    """Hold the lock through `fd`, a writer's own descriptor of its temp file."""
    fcntl.flock(fd, fcntl.LOCK_SH)


def remove_abandoned(candidates: Iterable[Path], older_than_s: float = ABANDONED_AFTER_S) -> int:
    """Remove each of `candidates` that no live writer holds and that has not been modified for
    `older_than_s`; how many went. One that vanishes or cannot be read meanwhile is left."""
    cutoff, removed = time.time() - older_than_s, 0
    for path in candidates:
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime > cutoff or path.is_symlink() or _held(path):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


def _held(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
