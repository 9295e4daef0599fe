"""Fetching big model files fast and verified: parallel ranged GETs, sha256 while streaming.

S3 gives one connection ~90 MB/s; a 2.5 GB model over one stream takes ~30 s, over 16 ranged
GETs a few. Parts land in any order; the sha256 covers the contiguous prefix as it completes
(hashlib releases the GIL, so hashing overlaps the downloads), and the file is accepted only
when the whole digest matches its manifest. A part cut off mid-stream is resumed from where it
stopped; the whole download has a deadline (download_deadline.py: a store that trickles data
in within every read timeout). The bytes land in a `Sink`: a file in the cache directory, or memory when the disk
lacks room (SnapStart caps /tmp at 512 MB).
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from functions.runtime.download_deadline import Deadline, DownloadTooSlow, Fetched, current
from functions.runtime.errors import IntegrityError, StoreError
from functions.runtime.settings import TransferSettings
from functions.runtime.store import ObjectStore

CHUNK = 1024 * 1024  # what one worker holds at a time
PART_TRIES = 3  # a part cut off mid-stream is resumed this many times


class Sink(Protocol):
    """Where a fetched file's bytes go, written at offsets by several threads at once."""

    def write_at(self, offset: int, data: bytes) -> None: ...

    def read_at(self, start: int, end: int) -> bytes | memoryview: ...


class FileSink:
    """A file of the final size, written with pwrite (the page cache, not this process's RSS)."""

    def __init__(self, path: Path, size: int) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(self.fd, size)

    def write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def read_at(self, start: int, end: int) -> bytes:
        return os.pread(self.fd, end - start, start)

    def close(self) -> None:
        os.close(self.fd)


class MemorySink:
    """Anonymous memory of the final size: pages are taken as parts land, and given back whole
    by `release` (a bytearray's would wait for the garbage collector)."""

    def __init__(self, size: int) -> None:
        self.buffer = mmap.mmap(-1, max(size, 1))
        self.size = size

    def write_at(self, offset: int, data: bytes) -> None:
        self.buffer[offset : offset + len(data)] = data

    def read_at(self, start: int, end: int) -> memoryview:
        return memoryview(self.buffer)[start:end]

    def view(self) -> memoryview:
        return memoryview(self.buffer)[: self.size]

    def release(self) -> None:
        # A view still held somewhere: the pages go when its holder drops it.
        with contextlib.suppress(BufferError):
            self.buffer.close()


# What to do about a version's file that is no longer the one published: said with each
# integrity refusal, which said only "refusing to serve it" to the operator of a canary that
# never loaded (a rollout rolled it back "not served"; `aiaas compare` stopped on it).
CHANGED = (
    "the object was changed in the store after it was published: put the published file back "
    "(a versioned bucket keeps it), or publish the model again as a new version"
)


def fetch_verified(
    store: ObjectStore,
    key: str,
    size: int,
    sha256: str,
    sink: Sink,
    settings: TransferSettings,
    deadline: Deadline | None = None,
) -> None:
    """Download `key` (`size` bytes) into `sink` in parallel parts; IntegrityError unless its
    sha256 is `sha256` (the sink then holds bytes that must not be used); DownloadTooSlow past
    `deadline` (None: the invocation's, else AIAAS_DOWNLOAD_MAX_SECONDS from now)."""
    digest = hashlib.sha256()
    fetch_into(store, key, size, sink, settings, deadline, landed=digest.update)
    actual = digest.hexdigest()
    if actual != sha256:
        raise IntegrityError(
            f"{key}: sha256 {actual} does not match the manifest's {sha256} ({CHANGED}); "
            "refusing to use it",
            public_message=f"{key.rsplit('/', 1)[-1]} failed its integrity check and is not served",
        )


def fetch_into(
    store: ObjectStore,
    key: str,
    size: int,
    sink: Sink,
    settings: TransferSettings,
    deadline: Deadline | None = None,
    *,
    landed: Callable[[bytes | memoryview], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Download `key` (`size` bytes) into `sink` in parallel parts, each resumed where it broke;
    `landed` gets the bytes in order as they complete; DownloadTooSlow past `deadline` (None:
    `download_deadline.current()`, which may be none)."""
    deadline = current(size) if deadline is None else deadline
    ranges = [(a, min(a + settings.part_bytes, size)) for a in range(0, size, settings.part_bytes)]
    where, fetched = f"{store.uri}/{key}", Fetched()

    def fetch(start: int, end: int) -> None:
        # The last part asks for a byte past the manifest's size: an object that has it is
        # longer than the file the manifest vouches for, refused as a shorter one is.
        read = _Read(store, key, sink, deadline, progress, where, size, fetched)
        read.part(start, end, last=end == size)

    done = ranges if len(ranges) <= 1 else _in_order(ranges, fetch, settings.workers)
    for start, end in done:
        if len(ranges) <= 1:  # one part: no pool to start
            fetch(start, end)
        if landed is not None:
            landed(sink.read_at(start, end))


def download(
    store: ObjectStore,
    key: str,
    size: int,
    dest: Path,
    settings: TransferSettings,
    progress: Callable[[int], None] | None = None,
) -> None:
    """`key` (`size` bytes) as the file `dest`, by the download's deadline (`fetch_into`)."""
    sink = FileSink(dest, size)
    try:
        fetch_into(store, key, size, sink, settings, progress=progress)
    finally:
        sink.close()


def _in_order(
    ranges: list[tuple[int, int]], fetch: Callable[[int, int], None], workers: int
) -> Iterator[tuple[int, int]]:
    """Yield each range once it and every range before it have landed; at most a few parts
    run ahead of the one being waited for, so a slow part never lets the rest pile up."""
    todo = iter(ranges)
    pending: deque[tuple[tuple[int, int], Future[None]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aiaas-fetch") as pool:
        try:
            for part in todo:
                pending.append((part, pool.submit(fetch, *part)))
                if len(pending) >= workers:
                    break
            while pending:
                part, future = pending.popleft()
                future.result()
                next_part = next(todo, None)
                if next_part is not None:
                    pending.append((next_part, pool.submit(fetch, *next_part)))
                yield part
        finally:
            for _, future in pending:
                future.cancel()


class _EndedEarly(StoreError):
    """The object ended before the part did: a cut-off stream, or an object of another size."""


class _Read:
    """One object's parts read into a sink, under a deadline (None: none)."""

    def __init__(
        self,
        store: ObjectStore,
        key: str,
        sink: Sink,
        deadline: Deadline | None,
        progress: Callable[[int], None] | None,
        where: str,
        size: int,
        fetched: Fetched,
    ) -> None:
        self.store, self.key, self.sink, self.deadline = store, key, sink, deadline
        self.progress, self.where, self.size, self.fetched = progress, where, size, fetched

    def part(self, start: int, end: int, *, last: bool = False) -> None:
        try:
            _fetch_part(self.store, self.key, start, end, self.sink, last=last, read=self)
        except DownloadTooSlow:
            raise
        except Exception as exc:  # a read the deadline stopped: said as that
            if self.deadline is not None and self.deadline.passed():
                raise self.deadline.too_slow(self.where, self.size, self.fetched) from exc
            raise

    def got(self, size: int) -> None:
        if self.deadline is not None:
            self.fetched.add(size)
            self.deadline.check(self.where, self.size, self.fetched)
        if self.progress is not None:
            self.progress(size)

    def watching(self, body: Any) -> contextlib.AbstractContextManager[None]:
        if self.deadline is None:
            return contextlib.nullcontext()
        self.deadline.check(self.where, self.size, self.fetched)
        return self.deadline.watching(body)


def _fetch_part(
    store: ObjectStore,
    key: str,
    start: int,
    end: int,
    sink: Sink,
    *,
    last: bool = False,
    read: _Read | None = None,
) -> None:
    position = start
    for attempt in range(PART_TRIES):
        try:
            with (
                store.open_read(key, position, end + 1 if last else end) as body,
                read.watching(body) if read else contextlib.nullcontext(),
            ):
                while position < end:
                    chunk = body.read(min(CHUNK, end - position))
                    if not chunk:
                        raise _EndedEarly(f"{key}: the object ended at byte {position}, not {end}")
                    sink.write_at(position, chunk)
                    position += len(chunk)
                    if read is not None:
                        read.got(len(chunk))
                if last and body.read(1):
                    raise IntegrityError(
                        f"{key}: the object goes on past byte {end}, the size its manifest "
                        f"gives ({CHANGED}): refusing to use it",
                        public_message=f"{key.rsplit('/', 1)[-1]} failed its integrity check",
                    )
            return
        except _EndedEarly as exc:
            if attempt == PART_TRIES - 1:  # every try ends there: the object is not the file
                raise IntegrityError(  # the manifest vouches for (shorter: replaced, truncated)
                    f"{exc.message}; the manifest says the file is longer ({CHANGED}): "
                    "refusing to use it",
                    public_message=f"{key.rsplit('/', 1)[-1]} failed its integrity check",
                ) from exc
        except DownloadTooSlow:
            raise
        except (StoreError, OSError):
            if attempt == PART_TRIES - 1 or (read and read.deadline and read.deadline.passed()):
                raise
