"""A deadline on a whole download, for a store that trickles (data within every read timeout,
never finishing).

botocore's read timeout is per read: an S3 (or a proxy, a network) that sends a few bytes every
few seconds never trips it, and a cold load of a 40 MB model at 2 KB/s would run ~5 hours:
Lambda's timeout killed the function with nothing logged, and `aiaas pull` hung. A download now
has a deadline: in a function, the invocation's time left less a margin to answer in (a 503
with Retry-After, not a kill), else `AIAAS_DOWNLOAD_MAX_SECONDS` (0: none; unset, 900 s,
Lambda's longest timeout, or the file's size at 1 MB/s where that is longer: a 10 GB dataset
or model pulled over a slow link is no trickle). It is checked between chunks, and at the deadline a watcher shuts
down the connections still reading (a blocked read of a trickle returns only when its chunk
is whole), so the download ends within a moment of it, never a chunk's trickle later.

Why a deadline, not a minimum rate: a rate floor cannot tell whether a model will load before
the invocation ends (a 2 GB model at a healthy 20 MB/s still outlasts a 30 s timeout), and one
floor fits no link and size at once; the time left is what decides whether a 503 can still be
answered. The error says what the rate was.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Any

from functions.runtime.errors import StoreUnavailable
from functions.runtime.said_once import SaidOnce
from functions.runtime.settings import download_max_seconds

SETTING = "AIAAS_DOWNLOAD_MAX_SECONDS"
DEFAULT_S = 900.0  # unset: Lambda's longest timeout ...
FLOOR_BYTES_PER_S = 1e6  # ... or the file at 1 MB/s, where that is longer
RETRY_AFTER_S = 5  # what the 503 tells a caller to wait before trying the load again
_NO_WATCHER = SaidOnce(logging.getLogger("aiaas.runtime"), "a process restart")


def _margin(left_s: float) -> float:
    """Of an invocation's `left_s`, kept to answer in (and to build the session of a model that
    made it): a fifth, at least 1 s and at most 5 s."""
    return min(5.0, max(1.0, left_s / 5))


class DownloadTooSlow(StoreUnavailable):
    """A download past its deadline: a 503 with `Retry-After` (the store may be faster then)."""

    def __init__(self, message: str, public_message: str) -> None:
        super().__init__(message, public_message=public_message)
        self.retry_after_s = RETRY_AFTER_S


class Deadline:
    """When a download (one object, or every object of a model's load) must be done by."""

    def __init__(self, seconds: float, why: str) -> None:
        self.started = time.monotonic()
        self.seconds, self.why = seconds, why
        self.at = self.started + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    @contextlib.contextmanager
    def watching(self, body: Any) -> Iterator[None]:
        """While `body` is read: aborted (its connection shut down) at the deadline, if it has
        an `abort` (a file's read never trickles)."""
        abort = getattr(body, "abort", None)
        if abort is None:
            yield
            return
        # A deadline past the longest wait a thread takes (AIAAS_DOWNLOAD_MAX_SECONDS=1e10) is
        # waited as that: its Timer died at its start with an OverflowError traceback on stderr.
        wait = min(max(0.0, self.at - time.monotonic()), threading.TIMEOUT_MAX)
        timer = _started(threading.Timer(wait, abort))
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()

    def check(self, where: str, size: int, fetched: Fetched) -> None:
        """DownloadTooSlow when the deadline has passed, for `where` (`size` bytes, `fetched`
        so far)."""
        if self.passed():
            raise self.too_slow(where, size, fetched)

    def too_slow(self, where: str, size: int, fetched: Fetched) -> DownloadTooSlow:
        """The error for `where`, naming its own bytes read and rate: an invocation's deadline
        is shared by every file it loads, and the bytes of the files before it (a version's
        model.onnx, the other version a compare loads) read as this one's ("229 of 207 bytes")."""
        took = max(time.monotonic() - fetched.started, 1e-3)
        rate = fetched.bytes / took
        need = f"; at that rate the {size:,} bytes take {size / rate:,.0f} s" if rate else ""
        name = where.rsplit("/", 1)[-1]
        return DownloadTooSlow(
            f"{where}: {fetched.bytes:,} of {size:,} bytes read in {took:.1f} s ({_rate(rate)}), "
            f"past the download's deadline of {self.seconds:.1f} s ({self.why}){need}: S3 or "
            "the network is sending too slowly; try again",
            public_message=f"{name} could not be read from the model store in time "
            f"({_rate(rate)}); retry",
        )


class Fetched:
    """One object's bytes read so far, over its parts (each on a thread of its own)."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.bytes = 0
        self._lock = threading.Lock()

    def add(self, size: int) -> None:
        with self._lock:
            self.bytes += size


def _started(timer: threading.Timer) -> threading.Timer | None:
    """`timer` started (a daemon), or None where no thread can be had (a process at its thread
    or memory limit): the read goes on unwatched, the deadline checked between its chunks only.
    Before, the RuntimeError failed the load whole (a 500), a model of one part needing no
    thread at all."""
    timer.daemon = True
    try:
        timer.start()
    except RuntimeError as exc:
        _NO_WATCHER.failed(f"download deadline: no thread to watch a read ({exc})")
        return None
    return timer


def _rate(per_s: float) -> str:
    for unit, size in (("MB/s", 1e6), ("KB/s", 1e3)):
        if per_s >= size:
            return f"{per_s / size:.1f} {unit}"
    return f"{per_s:.0f} B/s"


# The invocation's context, then its deadline once found: [context] or [context, deadline].
_CURRENT: ContextVar[list[Any] | None] = ContextVar("aiaas_invocation", default=None)


def configured(size: int = 0) -> Deadline | None:
    """A deadline of `AIAAS_DOWNLOAD_MAX_SECONDS` from now for a file of `size` bytes; None
    where it is 0 (none)."""
    seconds = download_max_seconds()
    if seconds is None:
        floor = size / FLOOR_BYTES_PER_S
        if floor > DEFAULT_S:
            return Deadline(floor, f"{SETTING} unset: 1 MB/s of the file")
        return Deadline(DEFAULT_S, f"{SETTING} unset: its default")
    return Deadline(seconds, SETTING) if seconds else None


def for_context(context: object) -> Deadline | None:
    """The deadline of a download in an invocation: its time left less a margin, or the
    setting's when that is sooner; None with no Lambda context or under `aiaas serve` (each
    file's own, `current`)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None or getattr(context, "serving", False):
        # `aiaas serve`: the load goes on past the request's 504 (30 s at most), so a model
        # slower to download than that (a promote's new version of gigabytes) is still served
        # once it is in; a request-bound deadline threw each try away and began again.
        return None
    setting = configured()
    left = float(remaining()) / 1000
    seconds = max(0.0, left - _margin(left))
    if setting is not None and setting.seconds <= seconds:
        return setting
    return Deadline(seconds, f"the invocation's {left:.1f} s left, less {_margin(left):g} s")


def current(size: int = 0) -> Deadline | None:
    """The deadline the download of a file of `size` bytes starts under: the invocation's
    (`invoked`), found at its first download and shared by the rest, else the setting's."""
    invocation = _CURRENT.get()
    if invocation is None:
        return configured(size)
    if len(invocation) == 1:  # its first download (two threads at once: the first one's kept)
        invocation.append(for_context(invocation[0]))
    return invocation[1] or configured(size)


def invoked(context: object) -> Token[list[Any] | None]:
    """Downloads started in this invocation (its thread, and what copies its context) share one
    deadline: every file of a model's load together. Found lazily: a request that downloads
    nothing (nearly all) pays a ContextVar set and reset, ~0.1 us, not the ~6 us of reading
    the setting and the time left. `reset(token)` when the invocation ends."""
    return _CURRENT.set([context])


def reset(token: Token[list[Any] | None]) -> None:
    _CURRENT.reset(token)


@contextlib.contextmanager
def within(context: object) -> Iterator[None]:
    """`invoked` and `reset` around a block."""
    token = invoked(context)
    try:
        yield
    finally:
        reset(token)
