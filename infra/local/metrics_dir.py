"""Where `aiaas serve --workers N` keeps prometheus_client's multiprocess files, and for how long.

The workers sum their counts through files in one directory (`infra/local/prometheus.py`).
It used to be a fresh `/tmp/aiaas-metrics-*`: a /tmp cleaner (systemd-tmpfiles ages /tmp, 10
days by default) removed it under a long-running server, and every scrape was then a 500;
a server killed with SIGKILL left its directory behind for good. Now:
- it lives in the user's cache directory (`$AIAAS_CACHE_DIR/metrics`, by default
  ~/.cache/aiaas/metrics), which no cleaner ages; the temporary directory only when that one
  cannot be written (a warning says so);
- the server holds a BSD lock (flock) on it while it runs: systemd-tmpfiles skips a locked
  directory and all below it (tmpfiles.d(5), "Age"), and the lock says "in use" to the next
  start, which removes the directories of servers that died without one (SIGKILL, OOM) and
  never a live one's. The workers inherit the locked descriptor, so the lock lasts while any
  of them runs;
- removed anyway (by hand, another cleaner), the workers rewrite it (`metrics_files.py`);
- a parent whose disk has less than `ROOM_BYTES` free is passed over: prometheus_client maps
  its files sparse (1 MiB each), and a worker touching a page its full disk cannot back dies of
  SIGBUS; a cache disk filled by models took the whole server down with it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from functions.runtime.errors import BadRequest
from functions.runtime.settings import make_dirs

# aiaas-metrics-<pid of the server>-<random>, one per running server. (Before, in /tmp, there
# was no pid in the name and no lock: such directories are left alone.)
PREFIX = "aiaas-metrics-"
log = logging.getLogger("aiaas.gateway")
MIB = 1024 * 1024
ROOM_BYTES = 16 * MIB  # several workers' sparse 1 MiB files, and room for them to grow


@contextlib.contextmanager
def metrics_dir(parents: Sequence[Path]) -> Iterator[Path]:
    """A fresh, locked directory under the first of `parents` that can hold one; stale ones
    of dead servers there removed first; removed itself when the server stops."""
    failures = []
    for parent in parents:
        try:
            directory, lock = _create(parent)
        except OSError as exc:
            failures.append(f"{parent}: {exc.strerror or exc}")
            continue
        if failures:
            log.warning(
                "the workers' metrics directory is in %s instead (%s)", parent, "; ".join(failures)
            )
        try:
            yield directory
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            os.close(lock)
        return
    raise BadRequest(
        f"no directory for the workers' metrics: {'; '.join(failures)}; point AIAAS_CACHE_DIR "
        f"or TMPDIR at a writable directory with {ROOM_BYTES // MIB} MiB free, or serve with "
        "--workers 1 (which keeps none)"
    )


def default_parents(cache_dir: Path) -> list[Path]:
    """The cache directory's `metrics`, else the temporary directory (both locked)."""
    try:
        temporary = Path(tempfile.gettempdir())
    except FileNotFoundError:  # none usable (a read-only root, TMPDIR missing or full): the
        # pod crashed with 'No usable temporary directory' and a stack trace; `_create` says why
        temporary = Path(os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 - only named
    return [cache_dir / "metrics", temporary]


def lock_directory(directory: Path, *, wait: bool = True) -> int:
    """An open descriptor of `directory` holding its exclusive BSD lock (closing it
    releases the lock); BlockingIOError when `wait` is False and another holds it."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_stale(parent: Path) -> list[Path]:
    """Directories under `parent` left by servers that are gone: no process holds their lock
    and the server named in them is not running (it may be between creating and locking)."""
    removed = []
    for directory in parent.glob(f"{PREFIX}*"):
        pid = _server_pid(directory.name)
        if pid is None or _running(pid):
            continue
        try:
            fd = lock_directory(directory, wait=False)
        except OSError:  # held (a live server's workers), or not ours to open
            continue
        try:
            shutil.rmtree(directory)
            removed.append(directory)
        except OSError as exc:
            log.warning("cannot remove the stale metrics directory %s: %s", directory, exc)
        finally:
            os.close(fd)
    return removed


def _create(parent: Path) -> tuple[Path, int]:
    make_dirs(parent)  # never a missing HOME (of the default ~/.cache/aiaas)
    free = shutil.disk_usage(parent).free
    if free < ROOM_BYTES:
        raise OSError(
            errno.ENOSPC,
            f"its disk has {free // MIB} MiB free, the workers' files need {ROOM_BYTES // MIB}",
        )
    for stale in remove_stale(parent):
        log.info("removed the metrics directory of a server no longer running: %s", stale)
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    try:
        return directory, lock_directory(directory)
    except OSError:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def _server_pid(name: str) -> int | None:
    pid, dash, _ = name.removeprefix(PREFIX).partition("-")
    return int(pid) if dash and pid.isdigit() else None


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a directory of an earlier process with this pid: its lock tells
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM  # someone else's process, running
    return True
