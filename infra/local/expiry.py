"""What the stack's bucket lifecycle rules do on S3 (template.yaml: `expire-capture`,
`expire-monitoring`), done by `aiaas serve` on a directory store: captured requests (callers'
data, kept only so long) and drift snapshots (one a minute per busy worker) expire after so
many days. Without it a store at the edge kept both forever.

Both are written in day folders, `capture|monitoring/<model>/<version>/<YYYY-MM-DD>/`, so a
day whose date is older than the limit goes whole: S3 expires an object so many days after its
creation, and an object's creation is its day folder's date. Serve runs it at start and once a
day after, on a thread beside the server, in one worker at a time (`ExpiryTurn`); an S3 store
is left to its bucket's rules.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.runtime.errors import AiaasError
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.gateway")

# The template's CaptureRetentionDays and MonitoringRetentionDays defaults.
CAPTURE_DAYS = 30
MONITORING_DAYS = 90
EVERY_S = 24 * 3600


@dataclass(frozen=True)
class Retention:
    """Days kept of each (0: kept forever)."""

    capture_days: int = CAPTURE_DAYS
    monitoring_days: int = MONITORING_DAYS

    def rules(self) -> list[tuple[str, int]]:
        pairs = [("capture", self.capture_days), ("monitoring", self.monitoring_days)]
        return [(prefix, days) for prefix, days in pairs if days > 0]


def expire(store: ObjectStore, retention: Retention, today: dt.date) -> int:
    """Delete the day folders past their retention on `today` (UTC); the objects deleted."""
    deleted = 0
    for prefix, days in retention.rules():
        oldest_kept = today - dt.timedelta(days=days)
        for model in store.list_dirs(prefix):
            for version in store.list_dirs(f"{prefix}/{model}"):
                folder = f"{prefix}/{model}/{version}"
                for day in store.list_dirs(folder):
                    date = _date(day)
                    if date is None or date >= oldest_kept:  # None: no day folder of ours
                        continue
                    keys = list(store.list_keys(f"{folder}/{day}"))
                    store.delete_many(keys)
                    deleted += len(keys)
    return deleted


def _date(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name) if len(name) == len("YYYY-MM-DD") else None
    except ValueError:
        return None


class ExpiryTurn:
    """Which worker of `aiaas serve` expires the store: one at a time. Made before the workers
    fork (an unnamed file each inherits); each worker's expiry thread waits for the file's lock,
    a POSIX record lock, which a process owns: the worker holding it expires, and when it ends
    (a crash, granian's reload) a waiting one takes over. The threads start in the workers: one
    alive in the process that forks them is what Python 3.12+ warns of ("This process is
    multi-threaded, use of fork() may lead to deadlocks in the child"; install hunt 2).
    Where granian does not fork its workers (the start method spawn or forkserver: Python
    3.14's default on Linux, macOS'), each gets the file's descriptor as multiprocessing passes
    one (`__reduce__`): an open file was no setting to pickle, and the server did not start."""

    def __init__(self, fd: int | None = None) -> None:
        self._fd = _unnamed_file() if fd is None else fd  # held for the server's life

    def __reduce__(self) -> tuple[Callable[[Any], ExpiryTurn], tuple[Any]]:
        from multiprocessing.reduction import DupFd

        return _received, (DupFd(self._fd),)

    def wait(self) -> None:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)  # held until this process ends


def _unnamed_file() -> int:
    """A file on no file system (Linux: memfd), else an unnamed temporary one: a container run
    read-only, the store on a volume, has no temporary directory to write in (serve failed at
    start: "No usable temporary directory found"), and locks on NFS may not be taken."""
    try:
        return os.memfd_create("aiaas-expiry-turn")
    except (AttributeError, OSError):  # not Linux, or a kernel without it
        return os.dup(tempfile.TemporaryFile().fileno())


def _received(dup: Any) -> ExpiryTurn:
    """The turn in a worker started by spawn or forkserver: the descriptor it was sent."""
    return ExpiryTurn(dup.detach())


@dataclass(frozen=True)
class DailyExpiry:
    """A directory store's expiry, as each worker of `aiaas serve` starts it (`start`)."""

    retention: Retention
    turn: ExpiryTurn | None = None  # serve's workers, where there are several

    def start(self, store: ObjectStore) -> threading.Thread | None:
        return expire_daily(store, self.retention, self.turn)


def expire_daily(
    store: ObjectStore, retention: Retention, turn: ExpiryTurn | None = None
) -> threading.Thread | None:
    """Expire now and every day after on a daemon thread, once it has `turn` (None: nothing to
    expire)."""
    if not retention.rules():
        return None

    def run() -> None:
        if turn is not None:
            turn.wait()
        while True:
            try:
                gone = expire(store, retention, dt.datetime.now(dt.UTC).date())
            except Exception as exc:  # the store away, a folder not ours: the next day tries
                said = exc.message if isinstance(exc, AiaasError) else repr(exc)
                log.warning("expiring old captures and drift snapshots failed: %s", said)
            else:
                if gone:
                    log.info("expired %d captured or drift objects past their retention", gone)
            time.sleep(EVERY_S)

    thread = threading.Thread(target=run, name="aiaas-expiry", daemon=True)
    thread.start()
    return thread
