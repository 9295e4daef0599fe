"""A worker's side of the shared metrics directory (`aiaas serve --workers N`): its files kept
there while it serves, and a scrape that reads what is there.

prometheus_client writes each worker's values into its own memory-mapped files
(`counter_<pid>.db`, ...) in the directory `metrics_dir.py` makes, and a scrape sums the files
it finds. Should the directory or a file be removed while the server runs (a cleaner, a hand),
the worker's values live on only in its memory (the unlinked file stays mapped): a scrape used
to fail with a traceback (a 500), and so did a request whose metric needed a new file. Here:
- each worker checks its files every `KEEP_S` and, when they are gone, recreates the directory
  and writes them back from memory, so its counts return and later samples land in them;
- a scrape does the same for the worker answering it, gives the others a moment to do theirs,
  then sums what it finds; if the directory cannot be read at all it answers with this
  worker's own counts. Either event is one warning in the log, not one per scrape;
- a worker starting meanwhile (granian's respawn after a crash, a late first start) makes the
  directory again for its first file (`recover`); one that cannot serves with its new series
  dropped (`no_room`), never failing to start: granian ended the whole server for that.

prometheus_client has no call for moving a file; its per-process files and their lock live in
the closure of `MultiProcessValue` (values.py), read here by name and pinned by
tests/infra/test_serve_metrics_dir.py. Without them (another version) the files are not
written back, and a warning says so at the start.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, values
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from infra.local.gone_series import PrunedVersions, WithoutGone
from infra.local.metrics_dir import lock_directory

KEEP_S = 1.0  # how often a worker looks for its files (a stat per file)
log = logging.getLogger("aiaas.gateway")


class SharedFiles:
    """One worker's view of the shared directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_fd: int | None = None  # the lock on a directory this worker recreated
        self._unreadable = False  # warned that the directory cannot be read
        self._unwritable = False  # warned that this worker's files cannot be written back
        self._restored_at = float("-inf")  # time.monotonic() of this worker's last restore
        self._full = False  # warned that a new series found no room

    def start_keeping(self) -> None:
        """Check and restore this worker's files every `KEEP_S`, for the life of the worker."""
        if _library_files() is None:
            log.warning(
                "this prometheus_client keeps its files differently: metrics files removed "
                "from %s while serving will not be written back",
                self.directory,
            )
            return
        threading.Thread(target=self._keep, name="aiaas-metrics-files", daemon=True).start()

    def render(self, own: CollectorRegistry, gone: PrunedVersions | None = None) -> bytes:
        """The workers' values summed; `own` (this worker's registry) if they cannot be read;
        either without the series `gone` judges gone (pruned and idle: gone_series.py)."""
        self.restore()
        # Just restored, or the directory made again (here or by the keeper): the other workers
        # find theirs gone as well and write them back within KEEP_S. Summed before that, their
        # counts would seem to drop, which Prometheus takes for a restart (rate() counts them
        # all again).
        wait = self._restored_at + 1.5 * KEEP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            text = generate_latest(_without(_FilesCollector(self.directory), gone))
        except (OSError, ValueError, RuntimeError) as exc:
            if not self._unreadable:
                self._unreadable = True
                log.warning(
                    "cannot read the workers' metrics in %s (%s): /metrics answers with the "
                    "counts of the worker that answers it until it can",
                    self.directory,
                    exc,
                )
            return generate_latest(_without(own, gone))
        self._unreadable = False
        return text

    def restore(self) -> bool:
        """Write this worker's files back if they were removed; True when it did."""
        state = _library_files()
        if state is None:
            return False
        files, library_lock = state
        with library_lock:  # no value is written meanwhile, so none is lost
            gone = [mapped for mapped in files.values() if _gone(mapped)]
            if not gone or not self._write_back(gone):
                return False
        log.warning(
            "the metrics files of worker %d were removed from %s while it served; wrote "
            "them back from memory (%s), counts kept; see docs/monitoring.md",
            os.getpid(),
            self.directory,
            ", ".join(Path(mapped._fname).name for mapped in gone),
        )
        return True

    def no_room(self, exc: OSError) -> None:
        """A new series could not be given its file or blocks (a full disk, a directory that
        cannot be made again): its samples are dropped until it can; said once a worker."""
        if not self._full:
            self._full = True
            log.warning(
                "worker %d cannot add a metrics series in %s (%s): samples of new series are "
                "not counted until the disk has room and the directory can be made; those "
                "already counted go on",
                os.getpid(),
                self.directory,
                exc.strerror or exc,
            )

    def recover(self, exc: FileNotFoundError) -> bool:
        """A metric's new file could not be made (the directory is gone): True once the
        directory is back, so the caller can try again."""
        if exc.filename is None or Path(exc.filename).parent != self.directory:
            return False
        self.restore()
        try:
            made = self._recreate_directory()
        except OSError:
            return False
        if made:
            log.warning(
                "worker %d found the metrics directory %s gone and made it again; the other "
                "workers write their files back within %g s; see docs/monitoring.md",
                os.getpid(),
                self.directory,
                KEEP_S,
            )
        return True

    def _write_back(self, gone: list[Any]) -> bool:
        try:
            self._recreate_directory()
            for mapped in gone:
                _rewrite(mapped)
        except OSError as exc:
            if not self._unwritable:  # once, not every KEEP_S until it can
                log.warning(
                    "cannot write the metrics files of worker %d back in %s (%s): its counts "
                    "are kept in memory and written back once it can",
                    os.getpid(),
                    self.directory,
                    exc,
                )
            self._unwritable = True
            return False
        self._restored_at = time.monotonic()
        self._unwritable = False
        return True

    def _recreate_directory(self) -> bool:
        """Make the directory if it is gone; True when this worker made it."""
        try:
            self.directory.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            return False
        self._restored_at = time.monotonic()  # the others' files are gone too: see render
        # Made again by this worker: locked again (a cleaner skips it), as the server did.
        fd = lock_directory(self.directory)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._lock_fd = fd
        return True

    def _keep(self) -> None:
        while True:
            time.sleep(KEEP_S)
            try:
                self.restore()
            except Exception:  # the keeper must not die: the next round tries again
                log.exception("checking the metrics files in %s", self.directory)


class _FilesCollector(MultiProcessCollector):
    """The directory's files summed, as prometheus_client does, but a file removed between
    listing and reading is left out rather than failing the whole scrape."""

    def __init__(self, directory: Path) -> None:
        super().__init__(None, str(directory))  # type: ignore[no-untyped-call]
        self.directory = directory

    def collect(self) -> Iterable[Metric]:
        for _ in range(3):
            files = [str(path) for path in self.directory.glob("*.db")]
            try:
                return self.merge(files, accumulate=True)  # type: ignore[no-any-return, no-untyped-call]
            except FileNotFoundError:
                continue  # one vanished since the listing: list again
        files = [str(path) for path in self.directory.glob("*.db") if path.exists()]
        return self.merge(files, accumulate=True)  # type: ignore[no-any-return, no-untyped-call]


def _without(collector: Any, gone: PrunedVersions | None) -> CollectorRegistry:
    """A registry of `collector`'s families, the series of gone versions left out."""
    registry = CollectorRegistry()
    registry.register(collector if gone is None else WithoutGone(collector, gone))
    return registry


def _library_files() -> tuple[dict[str, Any], Any] | None:
    """prometheus_client's open files of this process (by kind) and the lock its writes hold."""
    method = getattr(values.ValueClass, "close_all_files", None)
    function = getattr(method, "__func__", None)
    closure = getattr(function, "__closure__", None)
    if function is None or closure is None:
        return None
    cells = dict(zip(function.__code__.co_freevars, closure, strict=True))
    if "files" not in cells or "lock" not in cells:
        return None
    files, lock = cells["files"].cell_contents, cells["lock"].cell_contents
    return (files, lock) if isinstance(files, dict) else None


def _gone(mapped: Any) -> bool:
    """The file is no longer at its path (removed, or another file put there)."""
    try:
        there = Path(mapped._fname).stat()
    except OSError:  # not there, or its directory is not one any more
        return True
    mine = os.fstat(mapped._f.fileno())
    return (there.st_ino, there.st_dev) != (mine.st_ino, mine.st_dev)


def _rewrite(mapped: Any) -> None:
    """Copy the mapped file's bytes (all its values) to its path and map that file instead:
    positions, used size and capacity are unchanged."""
    path, capacity = Path(mapped._fname), mapped._capacity
    # Not *.db while written: a scrape meanwhile does not read it half-written.
    temporary = path.with_name(f"{path.name}.restoring")
    temporary.write_bytes(mapped._m[:capacity])
    temporary.replace(path)
    handle = path.open("a+b")  # kept open as the mapping's file, as the library does
    old_map, old_file = mapped._m, mapped._f
    mapped._f, mapped._m = handle, mmap.mmap(handle.fileno(), capacity, access=mmap.ACCESS_WRITE)
    old_map.close()
    old_file.close()
