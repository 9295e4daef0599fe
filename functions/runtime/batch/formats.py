"""Batch input formats behind one protocol: what scoring, sharding and merging need of each.

CSV and JSONL are text: a span is a byte range (a shard owns the lines that start in it), the
output is text written chunk by chunk, errors name a `line`. NPY is an array: a span is a row
range, the output is an `.npz` of arrays, errors name a `row`. `open_format` checks an input
against the model once (CSV header, NPY header and shape) and returns its format.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol, cast

import numpy as np

from functions.runtime.batch.csv import CsvDecoder, csv_body
from functions.runtime.batch.csv_header import CsvLayout, csv_layout
from functions.runtime.batch.csv_records import (
    judged_end,
    read_header,
    record_batches,
    record_starts,
)
from functions.runtime.batch.jsonl import JsonlDecoder, check_first_line, jsonl_body
from functions.runtime.batch.layout import BatchObject
from functions.runtime.batch.npy import (
    NpyHeader,
    c_rows,
    check_length,
    check_rows,
    fortran_rows,
    npy_chunks,
    read_npy_header,
)
from functions.runtime.batch.scoring import Chunk, OutputField
from functions.runtime.batch.sniff import (
    GZIP_MAGIC,
    Peeked,
    refuse_binary,
    refuse_other_format,
)
from functions.runtime.batch.source import (
    HEADER_LIMIT,
    MAX_LINE_BYTES,
    ByteRange,
    first_lines_end,
    line_batches,
    open_range,
    too_long_bytes,
)
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.store import ObjectInfo, ObjectStore


@dataclass(frozen=True)
class Reading:
    """What a format reads an input with: the object, the model it feeds, the chunk size and
    the longest text line kept (a longer one is a bad row, not read whole)."""

    store: ObjectStore
    key: str
    manifest: ModelManifest
    chunk_rows: int
    max_line_bytes: int = MAX_LINE_BYTES


class BatchFormat(Protocol):
    name: str
    text: bool  # spans are byte ranges and the output is text; else rows and arrays
    position_key: str  # what an error record names: "line" or "row"

    @property
    def splittable(self) -> bool:
        """Whether spans other than the whole object can be read (not so for a gzip stream)."""
        ...

    def extent(self, info: ObjectInfo) -> int:
        """The end of the span space: the object's bytes (text) or its rows (arrays)."""
        ...

    def chunks(self, reading: Reading, span: ByteRange) -> Iterator[Chunk]:
        """The chunks of `span` of the object, decoded for the model's inputs."""
        ...

    def output_head(self, fields: list[OutputField]) -> bytes:
        """What a text output starts with (a CSV header line); b"" for the others."""
        ...

    def body(
        self, chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]
    ) -> bytes:
        """A scored chunk's output lines (text formats)."""
        ...

    def record_edges(self, reading: Reading, start: int, cuts: Iterable[int]) -> Iterator[int]:
        """The ascending `cuts` (past `start`, where a span starts) moved to where a span may
        start: a record's start, at or after each cut."""
        ...

    def judged_end(self, reading: Reading) -> int:
        """Where the chunk the model is judged on ends (refusals.py: the input's first chunk, a
        CSV's second where the first holds its header alone): no span that starts the input
        may end before it (`job.span_edges`)."""
        ...


class _Text:
    text = True
    position_key = "line"
    compressed = False

    @property
    def splittable(self) -> bool:
        return not self.compressed

    def extent(self, info: ObjectInfo) -> int:
        return info.size

    def chunks(self, reading: Reading, span: ByteRange) -> Iterator[Chunk]:
        store, key = reading.store, reading.key
        opened: contextlib.AbstractContextManager[IO[bytes]]
        if self.compressed:
            if span.start:
                raise BadRequest(f"{key}: a gzip stream is read whole, not from byte {span.start}")
            opened = _gunzipped_object(store, key)
            span = ByteRange(0, None)
        else:  # from the byte before the span: the line ending there tells where the next starts
            opened = open_range(store, key, max(span.start - 1, 0))
        with opened as stream:
            for records, chunk in self._decoded(stream, span, reading):
                sized = too_long_bytes if chunk.errors else len  # a line over the limit: its own
                chunk.size = sum(map(sized, records)) + len(records)  # the progress of a run
                yield chunk

    def _decoded(
        self, stream: IO[bytes], span: ByteRange, reading: Reading
    ) -> Iterator[tuple[list[bytes], Chunk]]:
        """(the records read, their chunk) for the records of `span`."""
        raise NotImplementedError

    def record_edges(self, reading: Reading, start: int, cuts: Iterable[int]) -> Iterator[int]:
        """Where spans cut at `cuts` start instead, reading from `start`: JSONL lines are its
        records, and a span owns the lines that start in it (the shard rule), so the cuts."""
        return iter(cuts)

    def judged_end(self, reading: Reading) -> int:
        if self.compressed:  # read whole, never cut
            return 0
        with open_range(reading.store, reading.key, 0) as stream:
            return self._judged_end(stream, reading.chunk_rows, reading.max_line_bytes)

    def _judged_end(self, stream: IO[bytes], chunk_rows: int, limit: int) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class CsvFormat(_Text):
    layout: CsvLayout
    compressed: bool = False
    name = "csv"

    def _decoded(
        self, stream: IO[bytes], span: ByteRange, reading: Reading
    ) -> Iterator[tuple[list[bytes], Chunk]]:
        decoder = CsvDecoder(self.layout, reading.manifest, skip_header=span.start == 0)
        for batch in record_batches(stream, span, reading.chunk_rows, reading.max_line_bytes):
            header_only = decoder.skip_header and len(batch.records) == 1
            chunk = decoder.chunk(batch.first, batch.records, batch.numbers, batch.lines)
            chunk.header_only = header_only
            yield batch.records, chunk

    def _judged_end(self, stream: IO[bytes], chunk_rows: int, limit: int) -> int:
        return judged_end(stream, chunk_rows, limit)

    def record_edges(self, reading: Reading, start: int, cuts: Iterable[int]) -> Iterator[int]:
        """Each cut moved to the first record starting at or after it: a quoted field may hold
        line breaks, so a span must not start at just any line."""
        with open_range(reading.store, reading.key, max(start - 1, 0)) as stream:
            yield from record_starts(stream, start, cuts, reading.max_line_bytes)

    def output_head(self, fields: list[OutputField]) -> bytes:
        return self.layout.header_line(fields)

    def body(
        self, chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]
    ) -> bytes:
        return csv_body(chunk, outputs, fields)


@dataclass(frozen=True)
class JsonlFormat(_Text):
    compressed: bool = False
    name = "jsonl"

    def _decoded(
        self, stream: IO[bytes], span: ByteRange, reading: Reading
    ) -> Iterator[tuple[list[bytes], Chunk]]:
        decoder = JsonlDecoder(reading.manifest)
        for first, lines in line_batches(stream, span, reading.chunk_rows, reading.max_line_bytes):
            yield lines, decoder.chunk(first, lines)

    def _judged_end(self, stream: IO[bytes], chunk_rows: int, limit: int) -> int:
        return first_lines_end(stream, chunk_rows, limit)

    def output_head(self, fields: list[OutputField]) -> bytes:
        return b""

    def body(
        self, chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]
    ) -> bytes:
        return jsonl_body(chunk, outputs, fields)


@dataclass(frozen=True)
class NpyFormat:
    header: NpyHeader
    name = "npy"
    text = False
    position_key = "row"
    splittable = True

    def extent(self, info: ObjectInfo) -> int:
        return self.header.rows

    def chunks(self, reading: Reading, span: ByteRange) -> Iterator[Chunk]:
        end = self.header.rows if span.end is None else span.end
        rows = (self.header, reading.manifest, span.start, end, reading.chunk_rows)
        if self.header.fortran:
            yield from npy_chunks(fortran_rows(reading.store, reading.key, self.header), *rows)
            return
        offset = self.header.offset + span.start * self.header.row_bytes
        with open_range(reading.store, reading.key, offset) as stream:
            yield from npy_chunks(c_rows(stream, self.header), *rows)

    def output_head(self, fields: list[OutputField]) -> bytes:
        return b""

    def body(
        self, chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]
    ) -> bytes:
        raise BadRequest("NPY outputs are arrays, not text")

    def record_edges(self, reading: Reading, start: int, cuts: Iterable[int]) -> Iterator[int]:
        return iter(cuts)  # rows

    def judged_end(self, reading: Reading) -> int:
        return min(reading.chunk_rows, self.header.rows)


def open_format(
    store: ObjectStore,
    obj: BatchObject,
    manifest: ModelManifest,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> BatchFormat:
    """The input's format, once its head fits the model (raises what makes it not fit); a CSV
    header is a line like the others, of at most `max_line_bytes`."""
    key = obj.input_key
    _ = obj.format  # UnsupportedFormat (400) for a name batch does not read, before any read
    if obj.compressed:
        with _gunzipped_object(store, key) as stream:  # no gzip: refused here, for JSONL too
            peeked = Peeked(stream)
            refuse_binary(peeked.head, key, obj.format, compressed=True)
            if obj.format == "csv":
                first = read_header(cast(IO[bytes], peeked), max_line_bytes, key)
            else:
                first = _first_line(peeked.head, stream)
        refuse_other_format(first, key, obj.format, compressed=True)
        if obj.format == "csv":
            return CsvFormat(csv_layout(first, manifest, key), compressed=True)
        check_first_line(first, key)
        return JsonlFormat(compressed=True)
    if obj.format == "csv":
        with store.open_read(key) as raw:
            peeked = Peeked(raw)
            refuse_binary(peeked.head, key, "csv")
            first = read_header(cast(IO[bytes], peeked), max_line_bytes, key)
        refuse_other_format(first, key, "csv")
        return CsvFormat(csv_layout(first, manifest, key))
    if obj.format == "npy":
        header = read_npy_header(store, key)
        check_rows(header, manifest, key)
        check_length(header, store.head(key).size, key)
        return NpyFormat(header)
    with store.open_read(key) as head:
        first = head.readline(HEADER_LIMIT)
    refuse_binary(first, key, "jsonl")
    refuse_other_format(first, key, "jsonl")
    check_first_line(first, key)
    return JsonlFormat()


def _first_line(head: bytes, stream: IO[bytes]) -> bytes:
    """The first line of a stream whose first bytes `head` were read ahead."""
    if b"\n" in head:
        return head[: head.index(b"\n") + 1]
    return head + stream.readline(max(HEADER_LIMIT - len(head), 0))


# Rows of text compress 3-15x; a stream past this is a decompression bomb (a 356 KB upload
# scored 142 MB of rows): refused once it has expanded past RATIO_CHECKED_AFTER bytes.
MAX_GZIP_RATIO = 100
RATIO_CHECKED_AFTER = 64 * 1024 * 1024


@contextlib.contextmanager
def _gunzipped_object(store: ObjectStore, key: str) -> Iterator[IO[bytes]]:
    with store.open_read(key) as raw, gunzipped(raw, key) as stream:
        yield stream


@contextlib.contextmanager
def gunzipped(raw: IO[bytes], key: str) -> Iterator[IO[bytes]]:
    """The decompressed stream; a file that is not gzip, or is cut short, is the input's fault,
    and so is one that expands like a decompression bomb (compare's capture files read it too)."""
    counted = _Counted(raw)
    try:
        with gzip.GzipFile(fileobj=counted, mode="rb") as stream:
            yield cast(IO[bytes], _Bounded(stream, counted, key))
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        if counted.head and not counted.head.startswith(GZIP_MAGIC):
            raise BadRequest(
                f"{key}: the file is not gzip-compressed (its first bytes are "
                f"{counted.head[:8]!r}, not gzip's 1f 8b): name it without .gz, or gzip it (a "
                "body sent to the job API with Content-Encoding: gzip is stored inflated: send "
                "a .gz file without that header)"
            ) from None
        raise BadRequest(f"{key}: not a readable gzip stream: {exc}") from None


class _Counted:
    """The compressed bytes read so far."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.bytes, self.head = raw, 0, b""

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if self.bytes < 16:
            self.head += data[:16]
        self.bytes += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:  # gzip's rewind only: never called
        return self.raw.seek(offset, whence)


class _Bounded:
    """A gzip stream that may expand at most MAX_GZIP_RATIO times the bytes it read."""

    def __init__(self, stream: gzip.GzipFile, counted: _Counted, key: str) -> None:
        self.stream, self.counted, self.key, self.bytes = stream, counted, key, 0

    def read(self, size: int = -1) -> bytes:
        return self._checked(self.stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        return self._checked(self.stream.readline(size))

    def _checked(self, data: bytes) -> bytes:
        self.bytes += len(data)
        if self.bytes > RATIO_CHECKED_AFTER and self.bytes > MAX_GZIP_RATIO * self.counted.bytes:
            raise BadRequest(
                f"{self.key}: the gzip stream expands over {MAX_GZIP_RATIO}x its size "
                f"({self.counted.bytes:,} bytes to {self.bytes:,} and counting), which rows of "
                "data do not: refused as a decompression bomb; upload the file uncompressed"
            )
        return data
