"""Live histograms per served version, flushed to the store for the drift job to read.

Snapshots go to `monitoring/<model>/<version>/<YYYY-MM-DD>/<HHMMSS>-<id>.json` (UTC) in the
registry's store: the drift job reads a window of them with nothing else running (per-feature,
per-bin CloudWatch metrics would cost one custom metric each: 64 features x 10 bins).
When: by the first request once `interval` seconds passed since the last flush, so a
container writes at most one object a minute per version (one S3 PUT then, ~20 ms on that
request); in Lambda before that request's own rows are counted (a request after idleness
writes the counts held before it, not with its own). A long-lived server (`aiaas serve`,
`timer`) also has a thread of the monitor's own write held rows an interval after the first of
them, so a model gone quiet has its last rows written then, not at its next request (hours
later: they were dated at that request, and `aiaas monitor --window` counted them in the wrong
window); its requests' flushes include their own rows, as no held row is older. Either way a
snapshot is dated by when its rows were served: `start` and `end` are the times of its first
and last row (about one interval apart at most), whenever it is written. A container frozen
and reclaimed loses at most one interval of counts (statistics, not billing). A failed write
is logged and dropped, never a failed request; an error in one request's recording drops its
counts only (said once a process for a version). Requests answered while a version's baseline
is read are held and counted once it is; one that could not be read (the store away, any
unexpected error) is asked for again an interval later, the rows meanwhile not counted. Reads
and writes run aside (functions/runtime/aside.py): a request waits for them at most
`aside.WAIT_S`, however long a hung store takes, and one flush is in flight at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from threading import Event
from typing import TYPE_CHECKING

import numpy as np

from functions.runtime.aside import run_aside
from functions.runtime.drift.baseline_read import read_live
from functions.runtime.drift.held import held_bytes
from functions.runtime.drift.snapshots import SnapshotWriter
from functions.runtime.drift.watched import prediction_output
from functions.runtime.errors import NotFound, ServiceUnavailable, StoreError
from functions.runtime.model import LoadedModel
from functions.runtime.store import ObjectStore

if TYPE_CHECKING:
    from functions.runtime.drift.live import LiveHistograms

log = logging.getLogger("aiaas.drift")  # under `aiaas`: JSON lines as the function's others
DEFAULT_INTERVAL = 60.0
MEANWHILE = 16 << 20  # bytes held while a version's baseline is read (`aiaas serve`)
Request = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]  # its inputs and outputs


class DriftMonitor:
    """Histograms of the rows each loaded version answers, when the version has a baseline."""

    def __init__(
        self,
        store: ObjectStore,
        *,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        timer: bool = False,
    ) -> None:
        self.store = store
        self.interval = interval
        self._clock, self._wall = clock, wall
        self._live: dict[tuple[str, str], LiveHistograms | None] = {}
        self._unread: dict[tuple[str, str], float] = {}  # baseline not read: clock() to retry
        self._writer = SnapshotWriter(store)
        self._monitoring = False  # whether any version in _live has histograms
        # `aiaas serve` runs requests on a pool of threads sharing one monitor: one flush at a
        # time (a second would forget the versions the first is writing, under its loop).
        self._flushing = threading.Lock()
        # `_unread`, changed, and a read started, under it: requests arriving together at a
        # version's start start one read (two: the second's histograms replaced the first's,
        # and the rows the first counted meanwhile were lost). Not taken by a counted request.
        self._reads = threading.Lock()
        # Reads in flight, with the requests answered meanwhile (serve's other threads), counted
        # once it is read (at a server's start 23 of 100 went uncounted), or dropped.
        self._meanwhile: dict[tuple[str, str], list[Request]] = {}
        self._room: dict[tuple[str, str], int] = {}  # bytes each may hold yet
        self._since = clock()
        # clock() at the first and last row counted since the last flush (None: none yet)
        self._first: float | None = None
        self._last = 0.0
        # Set when rows start to be held, for the thread that flushes on time (`timer` only;
        # started with the first version monitored): held rows never wait for a request.
        self._wake = threading.Event() if timer else None
        self._timing = self._closed = False  # `close`d: the thread ends once nothing is held

    def idle(self, model: LoadedModel) -> bool:
        """Whether a request of `model` has nothing to count or flush: no version here has
        histograms and this one's baseline is not due to be asked for again (it had none, or
        it could not be read). The usual case, a model without a baseline: the request path
        then skips `watched` and `record` (~1 us of a small model's ~29 us request)."""
        if self._monitoring:
            return False
        key = (model.manifest.name, model.manifest.version)
        if key in self._live:  # read, and not monitored (all are None while not monitoring)
            return True
        due = self._unread.get(key)
        return due is not None and self._clock() < due and key not in self._meanwhile

    def record(
        self,
        model: LoadedModel,
        inputs: Mapping[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
    ) -> None:
        """One answered request of `model`; flushes when the interval has passed."""
        manifest = model.manifest
        key = (manifest.name, manifest.version)
        live = self._live.get(key)
        try:  # drift is never worth failing a request over
            if live is None:
                if key not in self._live:
                    live = self._start(key, model)
                if live is None and key in self._meanwhile:
                    live = self._hold(key, (inputs, outputs))
                if live is None and not self._monitoring:
                    return  # no version here has a baseline: no counts, nothing to flush
            now = self._clock()
            due = now - self._since >= self.interval
            if due and self._wake is None:
                # Lambda: before this request's rows, which may come long after the held ones
                # (after idleness): the snapshot's span is theirs alone.
                self._flush_due(key)
            if live is not None:
                live.record(inputs, outputs)
                if self._first is None:  # the first rows since the last flush
                    self._first = now
                    if self._wake is not None:
                        self._wake.set()
                self._last = now
            if due and self._wake is not None:
                # With them: the timer wrote any rows held an interval, so none are older.
                self._flush_due(key)
        except Exception:  # this request's counts only: the version stays monitored
            from functions.runtime.drift.live import not_counted

            not_counted(model.ref)

    def _flush_due(self, answering: tuple[str, str]) -> None:
        """The flush a request found due, aside, unless one is in flight (`answering`: the
        version that request is of: not forgotten as idle, its rows lost with it)."""
        if self._flushing.acquire(False):
            flush = lambda: self._flush_and_release(answering)  # noqa: E731
            run_aside(flush, name="aiaas-drift-flush", holding=self._flushing)

    def watched(self, model: LoadedModel) -> str:
        """The output `model`'s predictions are binned from, asked before it runs (a request
        naming other outputs has it computed too): the one its baseline was fitted on (one
        written before baselines named it bins the first output), read at a version's first
        request as `record` reads it; without a baseline, what a new one bins."""
        key = (model.manifest.name, model.manifest.version)
        live = self._live.get(key)
        try:  # drift is never worth failing a request over
            if live is None and key not in self._live:
                live = self._start(key, model)
        except Exception:
            log.exception("drift baseline of %s not read", model.ref)
        return live.output if live is not None else prediction_output(model.manifest)

    def _start(self, key: tuple[str, str], model: LoadedModel) -> LiveHistograms | None:
        """A version's first request: its histograms, or None when it has no baseline (yet).
        The read runs aside and this request waits for it at most `aside.WAIT_S`: a healthy
        store answers within it, a hung one (packets dropped at the edge) held the request for
        the S3 client's timeouts and retries, minutes. Meanwhile its requests are held, and no
        second read starts, even past the interval (one emptied the held list, then replaced
        the first's histograms and counts). The first monitored version's window starts once
        its baseline is read (flushes are skipped while none is). A store away is no answer,
        and a version without a baseline may get one (`aiaas baseline` on a model published
        elsewhere, while served): either is asked for again an interval later, once a minute."""
        due = self._unread.get(key)
        if due is not None and self._clock() < due:
            return None
        with self._reads:
            if key in self._live:  # read meanwhile by another request's (or, just now,
                return self._live.get(key)  # forgotten by a flush as idle: read again later)
            due = self._unread.get(key)
            if key in self._meanwhile or (due is not None and self._clock() < due):  # in flight
                return None
            self._unread[key] = self._clock() + self.interval  # this read's, until it ends
            self._meanwhile[key], self._room[key] = [], MEANWHILE
        again, began = due is not None, Event()
        read = lambda: self._read(key, model, again, began)  # noqa: E731
        if not run_aside(read, name="aiaas-drift-baseline") and not began.is_set():
            with self._reads:  # no thread started: no read to end the holding
                self._meanwhile.pop(key, None), self._room.pop(key, None)
        return self._live.get(key)

    def _hold(self, key: tuple[str, str], request: Request) -> LiveHistograms | None:
        """A request answered while its version's baseline is read: held (`MEANWHILE` bytes
        at most, `held_bytes`), or, if the read ended meanwhile, the histograms to record it in."""
        with self._reads:
            held = self._meanwhile.get(key)
            if held is None:
                return self._live.get(key)
            size = held_bytes(*request)
            if size <= self._room.get(key, 0):
                held.append(request)
                self._room[key] -= size
            return None

    def _read(self, key: tuple[str, str], model: LoadedModel, again: bool, began: Event) -> None:
        began.set()
        try:
            self._counted(key, model, again)
        finally:  # a read that yields no histograms drops the requests held meanwhile
            with self._reads:
                self._meanwhile.pop(key, None)
                self._room.pop(key, None)

    def _counted(self, key: tuple[str, str], model: LoadedModel, again: bool) -> None:
        """The read of `_read`; once the histograms are in `_live`, the requests held."""
        try:
            live = read_live(self.store, model)
        except NotFound:  # none yet: `aiaas baseline` may add one to a version being served
            with self._reads:
                self._unread[key] = self._clock() + self.interval
            return
        except (StoreError, ServiceUnavailable) as exc:
            if not again:  # one line an outage, not one an interval
                log.warning(
                    "%s: drift not monitored yet: its baseline could not be read (%s); "
                    "tried again every %g s",
                    model.ref,
                    exc.message,
                    self.interval,
                )
            with self._reads:
                self._unread[key] = self._clock() + self.interval
            return
        except Exception:  # never an unhandled error in a thread; asked again, as above
            if not again:  # (it was None for good: the version's rows never counted again)
                log.exception("drift baseline of %s not read; tried again every %g s",
                              model.ref, self.interval)  # fmt: skip
            with self._reads:
                self._unread[key] = self._clock() + self.interval
            return
        if again and live is not None:
            log.info("%s: drift monitored: its baseline was read", model.ref)
        if live is not None and not self._monitoring:
            self._since = self._clock()
            self._monitoring = True
            self._time_flushes()
        with self._reads:  # in `_live` before out of `_unread`: no moment a request reads again
            self._live[key] = live
            self._unread.pop(key, None)
            held = self._meanwhile.pop(key, []) if live is not None else []
        for inputs, outputs in held:
            self.record(model, inputs, outputs)

    def _time_flushes(self) -> None:
        """A version is monitored now: the thread that flushes on time (`timer` only)."""
        if self._wake is None:
            return
        with self._reads:  # two versions' reads ending together start one thread
            start, self._timing = not self._timing, True
        if not start:
            return
        try:
            threading.Thread(
                target=self._flush_on_time, name="aiaas-drift-timer", daemon=True
            ).start()
        except RuntimeError:  # no thread: requests flush when due; a later first version
            with self._reads:  # monitored (after all were forgotten as idle) tries again
                self._timing = False
            log.warning("drift timer not started (no thread): held rows wait for a request")

    def _due_in(self) -> float | None:
        """Seconds until the held rows are due (an interval after the first of them and after
        the last flush); None while none are held."""
        first = self._first
        if first is None:
            return None
        return max(first, self._since) + self.interval - self._clock()

    def _flush_on_time(self) -> None:
        """`timer`'s thread: writes held rows when due, then waits for rows to be held again
        (asleep, not polling, while none are: a quiet model costs nothing)."""
        assert self._wake is not None
        while not self._closed:
            self._wake.wait()
            self._wake.clear()
            while (left := self._due_in()) is not None:
                if left > 0:
                    self._wake.wait(left)  # `close` wakes it (a sleep held a retired one)
                    self._wake.clear()
                    continue
                with self._flushing:  # after a flush in flight (a stopping server's), if one is
                    left = self._due_in()
                    if left is not None and left <= 0:  # else that flush wrote them
                        self._flush_logged()

    def flush(self, last: bool = False) -> None:
        """Write each version's counts now, once a flush in flight ended (`aiaas serve` stopping:
        its exit handlers are bounded, infra/local/ending.py); `last`: its timer thread ends."""
        with self._flushing:
            self._closed = self._closed or last
            self._flush()
        if last and self._wake is not None:
            self._wake.set()  # it wakes, writes what a late request held, and ends

    def _flush_and_release(self, answering: tuple[str, str]) -> None:
        """A request's flush, aside; `_flushing` was taken for it. A write in flight meanwhile
        makes later requests skip theirs: what they counted waits for the next interval."""
        try:
            self._flush_logged(answering)
        finally:
            self._flushing.release()

    def _flush_logged(self, answering: tuple[str, str] | None = None) -> None:
        try:
            self._flush(answering)
        except Exception:  # never an unhandled error in a thread: as record() says it
            log.exception("drift counts not written")

    def _flush(self, answering: tuple[str, str] | None = None) -> None:
        """Write each version's counts since the last flush (nothing for an idle version).

        A version that answered nothing for a whole interval is forgotten (its histograms and
        baseline; one read brings them back): a server that runs for months while versions
        are published held every version that ever answered. Not the one `answering` the
        request that flushes: its rows are counted next."""
        now, wall = self._clock(), self._wall()
        first, last = self._first, self._last
        last = last if first is None else max(first, last)  # threads set them in any order
        self._since, self._first = now, None
        # The span of the rows counted since the last flush, in wall time (what a window reads).
        start, end = (wall, wall) if first is None else (wall - (now - first), wall - (now - last))
        # Copies of the maps: a request thread may add a version (`_start`) meanwhile.
        for gone, live in list(self._live.items()):
            if live is not None and live.idle and gone != answering:
                self._live.pop(gone, None)
        with self._reads:  # a read ending meanwhile must not have its retry time dropped
            self._unread = {k: due for k, due in self._unread.items() if due > self._clock()}
        self._monitoring = any(h is not None for h in list(self._live.values()))
        for (name, version), live in list(self._live.items()):
            doc = live.snapshot() if live is not None else None
            if doc is None:
                continue
            doc.update(model=name, version=version, start=start, end=end)
            self._writer.write(name, version, doc, end)
