"""Captured lines held in memory and written to the store as JSONL objects, never overwriting.

Objects: `capture/<model>/<version>/<YYYY-MM-DD>/<HHMMSS>-<writer>-<seq>.jsonl`, the date
that of the lines' own time (UTC), `writer` a random id per process (renewed after a SnapStart
restore, so restored copies of one snapshot never share it) and `seq` counting its objects;
each is written only if absent (a clash renews the id and writes again).

When (the rule of the EMF metrics, functions/predict/telemetry.py): at the end of a request, a
line is written at once when it comes `FLUSH_SECONDS` after the one before (a lone request is
never held), else held until the held lines are `FLUSH_SECONDS` old or `FLUSH_BYTES` big; a
request that adds nothing writes what has been held that long. The buffer is per model (one per
predict function): another model's requests never write it. A container frozen after a burst
keeps at most its last second until its next request; a long-lived server (`aiaas serve`,
`timer`) does not wait for one: a thread of the buffer's own writes the held lines once they are
`FLUSH_SECONDS` old (they were held for hours, out of `aiaas capture export`'s reach and lost
on a kill -9, when a model got a burst and then no traffic). At most `MAX_BYTES` are held: a line past
that is dropped and counted, as are lines whose write failed (never a failed request).
The writes run aside (functions/runtime/aside.py): a request waits for them at most
`aside.WAIT_S` in Lambda and not at all in `aiaas serve` (`wait_s`), one write is in flight at
a time, and lines are held meanwhile (a hung store fills the buffer, then drops and counts,
rather than holding every request for its timeouts).

Counts: `counts` since the process started, and each outcome reported as it happens to
`report` (the predict function's metrics: `aiaas_capture_*` in EMF and on `/metrics`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from functions.runtime.aside import run_aside
from functions.runtime.errors import AiaasError
from functions.runtime.store import ObjectExists, ObjectStore, holds

log = logging.getLogger("aiaas.capture")

PREFIX = "capture"
FLUSH_SECONDS = 1.0
FLUSH_BYTES = 1 << 20  # one object holds about this much at most
MAX_BYTES = 8 << 20  # held at most (memory bound); past it, lines are dropped and counted

Group = tuple[str, str, str]  # model, version, date: one object each

# What became of captured lines, as reported: (outcome, model, version, lines).
WRITTEN = "written"
DROPPED_FULL = "full"  # the buffer held MAX_BYTES already
DROPPED_WRITE = "write_failed"  # the store refused or failed the object
SKIPPED_BINARY = "binary"  # sampled, but OIP binary tensors (functions/predict/capture.py)
CountReport = Callable[[str, str, str, int], None]


def _no_report(outcome: str, model: str, version: str, lines: int) -> None:
    """Reports nowhere (a buffer without metrics: the CLI, tests)."""


def capture_prefix(model: str, version: str | None = None) -> str:
    return f"{PREFIX}/{model}" if version is None else f"{PREFIX}/{model}/{version}"


@dataclass
class CaptureCounts:
    """What happened to the lines offered since the process started."""

    written: int = 0  # lines in objects written
    objects: int = 0
    dropped: int = 0  # over MAX_BYTES, or their write failed


class CaptureBuffer:
    """Lines grouped by model, version and date until they are written."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_bytes: int = MAX_BYTES,
        report: CountReport = _no_report,
        wait_s: float | None = None,
        timer: bool = False,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        # How long the request that starts a write waits for it (None: aside.WAIT_S).
        self.wait_s = wait_s
        self.counts = CaptureCounts()
        self.report = report
        self._clock, self._wall = clock, wall
        self._groups: dict[Group, list[bytes]] = {}
        self._bytes = 0
        self._since = 0.0  # clock() at the first held line
        self._last = -math.inf  # clock() at the line before
        self._lock = threading.Lock()  # `aiaas serve` may run requests on a thread pool
        self._writing = threading.Lock()  # held while held lines are written: one write at a time
        self._seq = 0
        self.writer = _writer_id()
        # Lines dropped by refused writes since the first was said, by (model, version): a
        # full or read-only store logged a warning every flush (~1 a second a model a worker).
        self._refused: dict[tuple[str, str], int] = {}
        # Set when lines start to be held, for the thread that writes them (`timer` only; it
        # starts with the first line held): the requests of a hold pay nothing more.
        self._timer = threading.Event() if timer else None
        self._timing = False
        self._closed = False  # `close`d: the timer's thread ends once nothing is held

    @property
    def held(self) -> int:
        """Bytes held now."""
        return self._bytes

    def add(self, group: Group, line: bytes) -> None:
        """One captured line (ending in a newline), at the end of its request."""
        now = self._clock()
        full = False
        with self._lock:
            if self._bytes + len(line) > self.max_bytes:
                self.counts.dropped += 1
                full = due = True
            else:
                idle = now - self._last >= FLUSH_SECONDS
                first = not self._bytes
                if first:
                    self._since = now
                self._groups.setdefault(group, []).append(line)
                self._bytes += len(line)
                due = idle or self._bytes >= FLUSH_BYTES or now - self._since >= FLUSH_SECONDS
                if first and not due and self._timer is not None:
                    self._time_the_hold()
            self._last = now
        if full:
            self.report(DROPPED_FULL, group[0], group[1], 1)
        if due and self._writing.acquire(blocking=False):
            run_aside(
                self._write_and_release,
                name="aiaas-capture-write",
                wait=self.wait_s,
                holding=self._writing,
            )

    def _time_the_hold(self) -> None:
        """Lines start to be held (`timer`, `_lock` held): have them written when due."""
        assert self._timer is not None
        if not self._timing:
            try:
                threading.Thread(
                    target=self._write_when_due, name="aiaas-capture-timer", daemon=True
                ).start()
            except RuntimeError:  # no thread to be had: requests write when due; next hold tries
                log.warning("capture timer not started (no thread): held lines wait for a request")
                return
            self._timing = True
        self._timer.set()

    def _write_when_due(self) -> None:
        """`timer`'s thread: writes the held lines `FLUSH_SECONDS` after the first was held,
        unless a request wrote them first; then waits for the next hold."""
        assert self._timer is not None
        while not self._closed:
            self._timer.wait()
            self._timer.clear()
            while (left := self._left()) is not None:
                if left > 0:
                    self._timer.wait(left)  # `close` wakes it (a sleep held a retired one)
                    self._timer.clear()
                    continue
                with self._writing:  # after a request's write in flight, if one is
                    left = self._left()
                    if left is not None and left <= 0:  # else that request wrote them
                        self._write_logged()

    def _left(self) -> float | None:
        """Seconds until the held lines are due (None: none held)."""
        with self._lock:
            return self._since + FLUSH_SECONDS - self._clock() if self._bytes else None

    def tick(self) -> None:
        """The end of a request that captured nothing: write what has been held long enough."""
        if (
            self._bytes
            and self._clock() - self._since >= FLUSH_SECONDS
            and self._writing.acquire(blocking=False)
        ):
            run_aside(
                self._write_and_release,
                name="aiaas-capture-write",
                wait=self.wait_s,
                holding=self._writing,
            )

    def flush(self) -> None:
        """Write every held line now, once a write in flight ended (one object per model,
        version and date)."""
        with self._writing:
            self._write_held()

    def close(self) -> None:
        """Write every held line now and end the timer's thread (`aiaas serve` retiring the
        function: it waited for the next hold for the server's life, one more each reload)."""
        self._closed = True
        self.flush()
        if self._timer is not None:
            self._timer.set()  # it wakes, finds nothing held (or writes a late line), and ends

    def _write_and_release(self) -> None:
        """A request's write, aside; `_writing` was taken for it."""
        try:
            self._write_logged()
        finally:
            self._writing.release()

    def _write_logged(self) -> None:
        try:
            self._write_held()
        except Exception:  # never an unhandled error in a thread (_write counts what fails)
            log.exception("captured lines not written")

    def _write_held(self) -> None:
        with self._lock:
            groups, self._groups, self._bytes = self._groups, {}, 0
        now = datetime.fromtimestamp(self._wall(), UTC)
        stamp, today = now.strftime("%H%M%S"), now.strftime("%Y-%m-%d")
        for group, lines in groups.items():
            # Lines of a day that ended before their write (23:59:59.9, written at 00:00:01)
            # are the last of that day's folder: named 000001, they came before its earlier
            # objects, and the export (in key order) put them first.
            named = stamp if group[2] >= today else "235959"
            self._write(group, named, b"".join(lines), len(lines))

    def renew(self) -> None:
        """A new writer id (after a SnapStart restore: copies of one snapshot must differ)."""
        self.writer = _writer_id()

    def _write(self, group: Group, stamp: str, data: bytes, count: int) -> None:
        model, version, date = group
        for _ in range(2):
            with self._lock:
                self._seq += 1
                name = f"{stamp}-{self.writer}-{self._seq:06d}.jsonl"
            key = f"{capture_prefix(model, version)}/{date}/{name}"
            try:
                self.store.put_bytes(key, data, if_absent=True)
            except ObjectExists:
                if not holds(self.store, key, data):  # else our write, its answer lost: done
                    self.renew()  # another process drew this id: never overwrite its lines
                    continue  # (the lines went twice when the retry met our own write)
            except (AiaasError, OSError) as exc:
                self._said_refused(model, version, count, exc)
                break
            with self._lock:
                meanwhile = self._refused.pop((model, version), None)
            if meanwhile is not None:
                log.info(
                    "captured lines of %s:%s written again; %d dropped meanwhile",
                    model,
                    version,
                    meanwhile,
                )
            self.counts.written += count
            self.counts.objects += 1
            self.report(WRITTEN, model, version, count)
            return
        with self._lock:  # `add` counts lines dropped on requests' threads meanwhile
            self.counts.dropped += count
        self.report(DROPPED_WRITE, model, version, count)

    def _said_refused(self, model: str, version: str, count: int, exc: Exception) -> None:
        with self._lock:
            first = (model, version) not in self._refused
            self._refused[(model, version)] = self._refused.get((model, version), 0) + count
        if first:
            log.warning(
                "%d captured lines of %s:%s dropped: %s (said once until a write succeeds; "
                "aiaas_capture_dropped_total counts the lines dropped)",
                count,
                model,
                version,
                exc,
            )


def _writer_id() -> str:
    return uuid.uuid4().hex[:12]
