"""Reading part of an input object: byte ranges and the lines that start inside them.

A shard owns the lines that *start* in its byte range [start, end) (the Hadoop split rule), so
shards cut at arbitrary bytes still cover every line exactly once. S3 reads use ranged GETs;
a local file is sought. Memory stays bounded by the read block, not by the object: a line over
MAX_LINE_BYTES is not kept but read past, and handed on as `TOO_LONG`, which the decoders
report as a bad row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from functions.runtime.store import ObjectStore

READ_BLOCK = 4 * 1024 * 1024
HEADER_LIMIT = 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024  # the default; AIAAS_BATCH_MAX_LINE_BYTES (BatchSettings)
# Stands in for a line over the limit, followed by the limit and the line's length: not UTF-8,
# so no decoder can take it for a row.
TOO_LONG = b"\xff\xfe aiaas: line over "


def too_long(limit: int, length: int) -> bytes:
    return TOO_LONG + b"%d %d" % (limit, length)


def too_long_bytes(line: bytes) -> int:
    """The bytes a line read had in the input, line break excluded (a TOO_LONG one too)."""
    return int(line.rsplit(b" ", 1)[1]) if line.startswith(TOO_LONG) else len(line)


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of an object; `end` None means to the end of the object."""

    start: int = 0
    end: int | None = None


def open_range(
    store: ObjectStore, key: str, start: int
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """A stream of the object from byte `start` to its end (the store's ranged read)."""
    return store.open_read(key, start)


def read_first_line(store: ObjectStore, key: str) -> bytes:
    """The object's first line without its line break (the CSV header)."""
    with store.open_read(key) as handle:
        head = b""
        while b"\n" not in head and len(head) < HEADER_LIMIT:
            block = handle.read(64 * 1024)
            if not block:
                break
            head += block
    line = head.split(b"\n", 1)[0]
    return line[:-1] if line.endswith(b"\r") else line


def line_batches(
    stream: IO[bytes], span: ByteRange, max_lines: int, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, list[bytes]]]:
    """(first line number, up to `max_lines` lines) for the lines starting in `span`.

    Numbers count from 1 at the span's first line. `stream` must be positioned at
    `span.start - 1` when `span.start > 0`: that byte tells whether the first line starts
    exactly at `start` or belongs to the previous span.
    """
    number, carry = 1, []
    for lines, _, _ in owned_lines(stream, span, max_line_bytes):
        carry.extend(lines)
        while len(carry) >= max_lines:
            yield number, carry[:max_lines]
            number, carry = number + max_lines, carry[max_lines:]
    if carry:
        yield number, carry


def first_lines_end(stream: IO[bytes], max_lines: int, limit: int = MAX_LINE_BYTES) -> int:
    """The bytes of the first `max_lines` lines of what `stream` holds from its start, line
    breaks included: where the first chunk of a file of lines ends."""
    lines = next(line_batches(stream, ByteRange(), max_lines, limit), (1, []))[1]
    return sum(map(too_long_bytes, lines)) + len(lines)


def owned_lines(
    stream: IO[bytes], span: ByteRange, limit: int, *, split: bool = True
) -> Iterator[tuple[list[bytes], bool, int]]:
    """The lines starting in `span`, a block at a time: (lines, whether the block read holds a
    quote character, the bytes the lines had with their line breaks). A line over `limit` is
    handed on as `too_long`. With `split` False (a span to the end only) a block's lines come
    as one piece, line breaks in, for a caller that seldom needs them apart: its first `size`
    bytes (the rest begins the next piece); a line over the limit is then cut out only where
    it ends a block."""
    pending = b""
    position = max(span.start - 1, 0)  # offset of pending[0] in the object
    skip_partial = span.start > 0
    while True:
        block = stream.read(READ_BLOCK)
        data = pending + block
        if skip_partial:
            cut = data.find(b"\n")
            if cut < 0:
                if not block:
                    return
                pending, position = b"", position + len(data)
                continue
            data, position, skip_partial = data[cut + 1 :], position + cut + 1, False
        if not split:  # not cut either: the piece's own bytes are the first `size`
            pending = data[data.rfind(b"\n") + 1 :] if block else b""
            lines = [data]
        else:
            lines = data.split(b"\n")
            pending = lines.pop()
            if not block and pending:  # a last line without a line break
                lines.append(pending)
            if not block:
                pending = b""
        if split and lines and max(map(len, lines)) > limit:
            lines = [too_long(limit, len(line)) if len(line) > limit else line for line in lines]
        lines, done = _owned(lines, data, position, span.end)
        yield lines, b'"' in data, len(data) - len(pending)
        position += len(data) - len(pending)
        if done or not block:
            return
        if len(pending) > limit:  # a line too long to keep: read past the rest of it
            if span.end is not None and position >= span.end:
                return  # it starts past the span: the next span skips it as its partial line
            dropped, rest, ended = _read_past_line(stream)
            yield (
                [too_long(limit, len(pending) + dropped - (not ended))],
                False,
                len(pending) + dropped,
            )
            position += len(pending) + dropped  # the start of what follows its line break
            pending = rest
            if ended:
                return


def _read_past_line(stream: IO[bytes]) -> tuple[int, bytes, bool]:
    """(bytes read up to and including the next line break, what follows it in the block,
    whether the object ended first)."""
    dropped = 0
    while block := stream.read(READ_BLOCK):
        cut = block.find(b"\n")
        if cut >= 0:
            return dropped + cut + 1, block[cut + 1 :], False
        dropped += len(block)
    return dropped, b"", True


def _owned(
    lines: list[bytes], data: bytes, position: int, end: int | None
) -> tuple[list[bytes], bool]:
    """The complete lines of `data` that start before `end`, and whether the span is done."""
    if end is None or position + len(data) < end:
        return lines, False
    cut = end - position  # lines starting at offsets < cut belong to this span
    if cut <= 0:
        return [], True
    starting = 1 + data.count(b"\n", 0, cut - 1)
    return lines[:starting], starting <= len(lines)
