"""CSV records, not lines: a quoted field may hold line breaks (RFC 4180, as pandas' to_csv,
Excel and Google Sheets write multi-line text), so a record ends at a line break outside quotes.

Quote parity decides it: a line with an odd number of quote characters opens a field that the
next such line closes, and the lines between are the record's. A line without quotes is read
as it is, so a block with no quote character at all costs nothing more than lines did.

A field that does not close within the row-size limit (AIAAS_BATCH_MAX_LINE_BYTES), or before
the end of the input, would swallow every record after it: its first line is handed on alone
(a bad row: its quotes do not pair up) and reading goes on afresh from the line after it. So
does one that closes in lines that then make no CSV row: a stray quote (`1,"stray,5.1,...`)
paired with the next quoted field's opening (`4,"multi`) read `multi` after a closing quote,
and every row between, multi-line records among them, was lost into one bad row.

The header is a record too (`read_header`): a column name may hold a line break, and its
first line is held to the same limit as any line (a longer one is refused, never cut).

Workers and shards cut an input into spans that must start at records: `record_starts` moves
each cut to the first record that starts at or after it, reading from a record start with the
same rules as the reader, so a span never starts inside a record. The first span ends no earlier
than the chunk the model is judged on (`judged_end`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import IO

import numpy as np

from functions.runtime import csv_fields
from functions.runtime.batch.source import (
    READ_BLOCK,
    TOO_LONG,
    ByteRange,
    owned_lines,
    too_long,
    too_long_bytes,
)
from functions.runtime.errors import BadRequest

QUOTE = b'"'


@dataclass(frozen=True)
class RecordBatch:
    """Up to a chunk's records, each with the number of the line it starts on."""

    first: int  # the number of the batch's first line
    records: list[bytes]  # a record that spans lines holds its line breaks, as read
    numbers: np.ndarray | None  # each record's first line; None: one line each, from `first`
    lines: int  # the physical lines the records cover


class _Joiner:
    """Joins the lines of records whose quoted fields span lines, across the blocks read."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: list[bytes] = []  # the lines of a record whose quoted field is still open
        self.open_at = 0  # the number of its first line
        self.size = 0

    def feed(self, number: int, lines: list[bytes]) -> tuple[list[bytes], list[int]]:
        """The records that lines `number`... complete, and the numbers of their first lines."""
        records: list[bytes] = []
        starts: list[int] = []
        self._take(zip(count(number), lines), records, starts)
        return records, starts

    def finish(self) -> tuple[list[bytes], list[int]]:
        """At the end of the input: a field still open never closes."""
        records: list[bytes] = []
        starts: list[int] = []
        while self.open:
            self._give_up(records, starts)
        return records, starts

    def _take(
        self, numbered: Iterable[tuple[int, bytes]], records: list[bytes], starts: list[int]
    ) -> None:
        for number, line in numbered:
            odd = line.count(QUOTE) % 2 == 1
            if self.open:
                self.open.append(line)
                self.size += len(line) + 1
                if odd and _one_row(b"\n".join(self.open)):
                    records.append(b"\n".join(self.open))
                    starts.append(self.open_at)
                    self.open = []
                # closed but no CSV row (the quote that opened it was a stray one), or too long
                elif odd or self.size > self.limit or line.startswith(TOO_LONG):
                    self._give_up(records, starts)
            elif odd and _opens_field(line):
                self.open, self.open_at, self.size = [line], number, len(line)
            else:
                records.append(line)
                starts.append(number)

    def _give_up(self, records: list[bytes], starts: list[int]) -> None:
        """The open field did not close in time: its first line is a (bad) record alone, and
        the lines after it are read afresh."""
        first, rest, number = self.open[0], self.open[1:], self.open_at
        self.open = []
        records.append(first)
        starts.append(number)
        self._take(zip(count(number + 1), rest), records, starts)


def _opens_field(line: bytes) -> bool:
    """Whether a line of an odd number of quotes ends inside a quoted field (its record goes on
    to the next line). A quote inside an unquoted field is a character (`5" screen`), as the
    csv module and pandas read it: counted as an opening, such a row was a bad row."""
    try:
        next(csv_fields.reader([line.decode("latin-1").removesuffix("\r")], strict=True), None)
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _one_row(record: bytes) -> bool:
    """Whether the lines of `record`, joined where a quoted field spans them, are one CSV row
    (as the reader will parse it: strict quotes). Only records spanning lines are asked."""
    text = record.decode("latin-1")  # the quotes, commas and line breaks are all it reads
    try:
        rows = list(csv_fields.reader([text.removesuffix("\r")], strict=True))
    except csv.Error:
        return False
    return len(rows) == 1


class HeaderTooLong(BadRequest):
    """The CSV header's line is longer than the line limit: refused, never read cut."""


def read_header(stream: IO[bytes], limit: int, where: str) -> bytes:
    """The CSV header record without its line end: like any record, a quoted field may hold
    line breaks (pandas writes a column name with a newline so), and like any line its first
    line holds at most `limit` bytes (AIAAS_BATCH_MAX_LINE_BYTES). A longer one is refused: cut
    at a fixed 1 MiB, the header lost the columns after the cut, and the file failed for
    lacking columns it has (or every row for having more fields than the header)."""
    head, size = b"", 64 * 1024
    while True:
        block = stream.read(size)
        head += block
        size = min(2 * size, READ_BLOCK)  # doubling: a long header is not copied over and over
        complete = not block or len(head) > limit
        if complete:
            head = head[: limit + 1]
            if len(head) > limit and b"\n" not in head:
                raise HeaderTooLong(
                    f"{where}: the header line is longer than {limit} bytes "
                    "(AIAAS_BATCH_MAX_LINE_BYTES), the longest line batch reads: set "
                    "AIAAS_BATCH_MAX_LINE_BYTES above the header's length, where the file is "
                    "scored, or shorten its column names"
                )
        record = first_record(head, complete=complete)
        if record is not None:
            return record


def first_record(head: bytes, *, complete: bool) -> bytes | None:
    """The first record of `head` without its line end; None while more bytes may close it.
    A quoted field still open when `head` is `complete` never closes: its first line stands
    alone, as `_Joiner` hands it on, so the decoder skips the very record matched here."""
    start = quotes = 0
    while (end := head.find(b"\n", start)) >= 0:
        quotes += head.count(QUOTE, start, end)
        if quotes % 2 == 0:
            return _without_cr(head[:end])
        start = end + 1
    if not complete:
        return None
    if (quotes + head.count(QUOTE, start)) % 2 == 0:  # the header alone, no line end
        return _without_cr(head)
    return _without_cr(head.split(b"\n", 1)[0])


def _without_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def record_batches(
    stream: IO[bytes], span: ByteRange, max_records: int, limit: int
) -> Iterator[RecordBatch]:
    """The records starting in `span`, in batches of up to `max_records` (`span.start` must be
    a record's start; `stream` is positioned as `source.line_batches` wants it)."""
    joiner = _Joiner(limit)
    records: list[bytes] = []
    starts = np.empty(0, dtype=np.int64)
    number = 1
    for lines, quoted, _ in owned_lines(stream, span, limit):
        if quoted or joiner.open:
            got, got_starts = joiner.feed(number, lines)
            starts = np.concatenate([starts, np.array(got_starts, dtype=np.int64)])
        else:  # no quote in the block: every line is a record
            got = lines
            starts = np.concatenate([starts, np.arange(number, number + len(lines))])
        records.extend(got)
        number += len(lines)
        following = joiner.open_at if joiner.open else number  # where the next record starts
        while len(records) >= max_records:
            yield _batch(records[:max_records], starts[: max_records + 1], following)
            records, starts = records[max_records:], starts[max_records:]
    got, got_starts = joiner.finish()
    records.extend(got)
    starts = np.concatenate([starts, np.array(got_starts, dtype=np.int64)])
    while records:
        yield _batch(records[:max_records], starts[: max_records + 1], number)
        records, starts = records[max_records:], starts[max_records:]


def judged_end(stream: IO[bytes], max_records: int, limit: int) -> int:
    """The bytes from a CSV's start (where `stream` is) to the end of the chunk the model is
    judged on (refusals.py): its first batch of `max_records` records, the header's included,
    or its second where the first holds the header alone (batches of one record)."""
    records: list[bytes] = []
    for batch in record_batches(stream, ByteRange(), max_records, limit):
        records += batch.records
        if len(records) > 1:
            break
    return sum(map(too_long_bytes, records)) + len(records)  # a record ends in a line break


def _batch(records: list[bytes], starts: np.ndarray, following: int) -> RecordBatch:
    """`starts` holds the next record's start too, when it is known."""
    end = int(starts[len(records)]) if len(starts) > len(records) else following
    numbers = starts[: len(records)]
    first = int(numbers[0])
    one_line_each = int(numbers[-1]) - first == len(records) - 1
    return RecordBatch(first, records, None if one_line_each else numbers, end - first)


def record_starts(stream: IO[bytes], start: int, cuts: Iterable[int], limit: int) -> Iterator[int]:
    """Each of the ascending `cuts` (past `start`) moved to the first record starting at or
    after it, or to the end of the object; read from `start`, a record's start, with `stream`
    positioned at `start - 1` (or 0). A block with no quote is not even split into lines."""
    seek = _Seek(iter(cuts))
    joiner = _Joiner(limit)
    position, number = start, 1  # the offset and number of the next line
    span = ByteRange(start, None)
    for (piece,), quoted, size in owned_lines(stream, span, limit, split=False):
        if seek.cut is None:
            return
        if not quoted and not joiner.open:  # every line starts a record: the next one's start
            while (
                seek.cut is not None and (at := _line_start(piece, seek.cut - position, size)) >= 0
            ):
                yield position + at
                seek.cut, seek.need = next(seek.cuts, None), None
            position += size
            continue
        lines = _lines(piece[:size], limit)
        starts = np.array(joiner.feed(number, lines)[1], dtype=np.int64)
        if seek.need is not None or seek.cut < position + size:
            sizes = [too_long_bytes(line) for line in lines]  # only where a cut falls
            seek.keep(number, position + np.cumsum([0, *sizes[:-1]]) + np.arange(len(lines)))
            yield from seek.found(starts)
        position, number = position + size, number + len(lines)
    yield from seek.found(np.array(joiner.finish()[1], dtype=np.int64))
    if seek.cut is not None:
        yield from (position for _ in [seek.cut, *seek.cuts])


def _line_start(piece: bytes, at: int, size: int) -> int:
    """The first line start at or after offset `at` of `piece[:size]` (its end counts), or -1."""
    if at <= 0:
        return 0
    found = piece.find(b"\n", at - 1, size)
    return -1 if found < 0 else found + 1


def _lines(piece: bytes, limit: int) -> list[bytes]:
    """A piece's lines, as `owned_lines` splits them."""
    lines = piece.split(b"\n") if piece else []
    if piece.endswith(b"\n"):
        lines.pop()
    return [too_long(limit, len(line)) if len(line) > limit else line for line in lines]


class _Seek:
    """The cut being moved: its first line at or after it (`need`), once known, and the
    offsets of the lines read since."""

    def __init__(self, cuts: Iterator[int]) -> None:
        self.cuts = cuts
        self.cut = next(cuts, None)
        self.need: int | None = None
        self.first = 0  # the number of the first line whose offset is kept
        self.offsets = np.empty(0, dtype=np.int64)

    def keep(self, number: int, offsets: np.ndarray) -> None:
        if self.need is None:
            self.first, self.offsets = number, offsets
        else:
            self.offsets = np.concatenate([self.offsets, offsets])

    def found(self, starts: np.ndarray) -> Iterator[int]:
        """The cuts that records starting on lines `starts` settle."""
        while self.cut is not None:
            if self.need is None:
                if not len(self.offsets) or self.cut > self.offsets[-1]:
                    return  # past the lines read: a later block settles it
                self.need = self.first + int(np.searchsorted(self.offsets, self.cut))
            at = int(np.searchsorted(starts, self.need))
            if at == len(starts):
                return
            yield int(self.offsets[int(starts[at]) - self.first])
            self.cut, self.need = next(self.cuts, None), None
