"""CSV records that span lines: read as csv.reader reads them, numbered by their first line, and
spans cut anywhere move to record starts, so the spans together read what the whole file reads."""

from __future__ import annotations

import csv
import io
import itertools
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.runtime.batch import source
from functions.runtime.batch.csv_records import (
    HeaderTooLong,
    judged_end,
    read_header,
    record_batches,
    record_starts,
)
from functions.runtime.batch.source import MAX_LINE_BYTES, ByteRange, first_lines_end


def read(data: bytes, start: int = 0, end: int | None = None, rows: int = 3, limit: int = 1000):
    """(records, each one's line number counted from the file's first line, lines covered)."""
    stream = io.BytesIO(data)
    stream.seek(max(start - 1, 0))
    records, numbers, lines = [], [], 0
    before = data[:start].count(b"\n")
    for batch in record_batches(stream, ByteRange(start, end), rows, limit):
        own = batch.numbers
        if own is None:
            own = np.arange(batch.first, batch.first + len(batch.records))
        assert own[0] == batch.first
        records += batch.records
        numbers += (own + before).tolist()
        lines += batch.lines
    return records, numbers, lines


def starts(data: bytes, cuts: list[int], limit: int = 1000) -> list[int]:
    return list(record_starts(io.BytesIO(data), 0, cuts, limit))


REVIEWS = (
    b'id,text\n1,"great product\nwould buy again"\n2,plain\n'
    b'3,"crlf\r\n""quoted"" inside"\r\n4,"a\n\nblank line inside"\n5,last'
)


def test_a_quoted_field_with_line_breaks_is_one_record_on_its_first_line():
    records, numbers, lines = read(REVIEWS)
    assert lines == 10
    assert [next(csv.reader([r.decode()])) for r in records] == list(
        csv.reader(io.StringIO(REVIEWS.decode(), newline=""))
    )
    assert records[1] == b'1,"great product\nwould buy again"'  # as read, for the echo
    assert records[3] == b'3,"crlf\r\n""quoted"" inside"\r'  # the line's own CR: cut later
    assert numbers == [1, 2, 4, 5, 7, 10]


def test_an_unclosed_quote_is_its_first_line_alone_and_reading_goes_on():
    data = b'id,x\n1,"never closed\n2,b\n3,c\n'
    assert read(data) == ([b"id,x", b'1,"never closed', b"2,b", b"3,c"], [1, 2, 3, 4], 4)
    two, three = data.index(b"2,b"), data.index(b"3,c")
    assert starts(data, list(range(1, len(data) + 1))) == [
        5 if c <= 5 else two if c <= two else three if c <= three else len(data)
        for c in range(1, len(data) + 1)
    ]


def test_a_stray_quote_closed_by_a_later_field_is_its_first_line_alone():
    """Quote parity pairs line 2's stray quote with line 4's opening one; the lines joined are
    no CSV row (`x` after a closing quote), so line 2 stands alone and line 3 is read afresh."""
    data = b'id,x\n1,"stray\n2,b\n3,"x\ny"\n4,c\n'
    assert read(data) == (
        [b"id,x", b'1,"stray', b"2,b", b'3,"x\ny"', b"4,c"],
        [1, 2, 3, 4, 6],
        6,
    )
    two, three, four = data.index(b"2,b"), data.index(b'3,"x'), data.index(b"4,c")
    assert starts(data, [6, two + 1, three + 1]) == [two, three, four]


def test_a_field_open_past_the_record_limit_is_its_first_line_alone():
    data = b'h\n1,"opens\n' + b"filler line\n" * 5 + b'closes"\n9,z\n'
    records, numbers, _ = read(data, limit=40)
    assert records[:3] == [b"h", b'1,"opens', b"filler line"]
    assert records[-2:] == [b'closes"', b"9,z"]  # an odd line at the end: alone, too
    assert numbers == list(range(1, 10))
    whole = read(data, limit=1000)[0]
    assert whole[1] == b'1,"opens\n' + b"filler line\n" * 5 + b'closes"'


def test_a_line_over_the_limit_is_counted_in_the_offsets(monkeypatch):
    monkeypatch.setattr(source, "READ_BLOCK", 64)
    data = b'a,"x\ny"\n' + b"b" * 500 + b'\nc,"1\n2"\nd\n'
    assert read(data, limit=100)[1] == [1, 3, 4, 6]
    assert starts(data, [8, 9, 300, 510]) == [8, 509, 509, 517]  # past the long line
    assert data[509:].startswith(b'c,"1')


CELLS = st.text(alphabet='ab ,"\n\r', max_size=8)


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.lists(CELLS, min_size=1, max_size=3), min_size=1, max_size=12),
    crlf=st.booleans(),
    junk=st.lists(st.sampled_from([b'"', b'a"b', b"", b'"\r', b"x" * 30]), max_size=3),
    cuts=st.lists(st.integers(1, 400), max_size=4),
    block=st.sampled_from([7, 64, 4096]),
    limit=st.sampled_from([16, 1000]),
)
def test_spans_cut_anywhere_read_what_the_whole_file_reads(rows, crlf, junk, cuts, block, limit):
    data = b"".join(written(row) + (b"\r\n" if crlf else b"\n") for row in rows)
    if limit == 1000 and not junk:  # a good file: as csv reads it
        got = [next(csv.reader([r.decode().rstrip("\r")]), []) for r in read(data)[0]]
        expected = list(csv.reader(io.StringIO(data.decode(), newline="")))
        assert [row for row in got if row] == [row for row in expected if row]
    data += b"\n".join(junk)  # bad lines: unclosed quotes, lines over the limit
    with mock.patch.object(source, "READ_BLOCK", block):
        whole = read(data, limit=limit)
        edges = [0, *starts(data, sorted(c for c in set(cuts) if c < len(data)), limit)]
        parts = [read(data, a, b, limit=limit) for a, b in itertools.pairwise([*edges, len(data)])]
    assert [r for part in parts for r in part[0]] == whole[0]
    assert [n for part in parts for n in part[1]] == whole[1]
    assert sum(part[2] for part in parts) == whole[2] == data.count(b"\n") + (data[-1:] != b"\n")


def written(row: list[str]) -> bytes:
    """A row as csv writes it, quoting a field with a CR or LF (with lineterminator="\\n" a
    field holding a CR goes out unquoted, which no reader reads back)."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue().removesuffix("\r\n").encode()


def test_the_header_is_the_first_record_as_the_reader_takes_it():
    """A quoted name over lines is the header's; a quote that never closes leaves the first
    line alone, as `record_batches` hands it on, so the decoder drops what was matched."""
    for data, header in [
        (b'id,"note\r\n(free)",x\r\n1,a,b\r\n', b'id,"note\r\n(free)",x'),
        (b"a,b", b"a,b"),
        (b'a,"b\n1,2\n', b'a,"b'),
    ]:
        assert read_header(io.BytesIO(data), MAX_LINE_BYTES, "a.csv") == header
        assert read(data, rows=10)[0][0] in (header, header + b"\r")
    big = b'a,"' + b"x\n" * 40_000
    assert read_header(io.BytesIO(big), 1000, "a.csv") == b'a,"x'


@pytest.mark.parametrize("end", [b"\n1,2\n", b"\r\n1,2\r\n", b""])
def test_a_header_line_over_the_limit_is_refused_never_cut(end: bytes) -> None:
    """As a row's line (a CR before its LF counts): up to the limit is read whole, past the
    first 64 KiB read; one byte more is refused naming the setting. Cut at a fixed 1 MiB, it
    lost its last columns and the file failed for lacking them."""
    limit = 200_000
    cr = len(end) > 1 and end[0] == ord("\r")
    for size, refused in [(limit, False), (limit + 1, True)]:
        header = b"a," + b"n" * (size - 2 - cr)
        data = header + end
        assert len(data.split(b"\n")[0]) == size
        if refused:
            with pytest.raises(HeaderTooLong) as raised:
                read_header(io.BytesIO(data), limit, "wide.csv")
            assert str(raised.value).startswith(
                "wide.csv: the header line is longer than 200000 bytes (AIAAS_BATCH_MAX_LINE_BYTES)"
            )
        else:
            assert read_header(io.BytesIO(data), limit, "wide.csv") == header


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.lists(CELLS, min_size=1, max_size=3), min_size=1, max_size=12),
    crlf=st.booleans(),
    junk=st.lists(st.sampled_from([b'"', b'a"b', b"", b'"\r', b"x" * 30]), max_size=3),
    chunk=st.integers(1, 5),
    block=st.sampled_from([7, 64, 4096]),
    limit=st.sampled_from([16, 1000]),
)
def test_the_judged_chunk_ends_where_the_reader_ends_it(rows, crlf, junk, chunk, block, limit):
    """Shards and worker blocks cut no earlier than `judged_end`: it must be where the reader
    ends the first chunk (the second, when the first is the header alone) and a record's start,
    so the span that starts the input reads exactly those records."""
    data = b"".join(junk[:1]) + b"\n" if junk else b""  # an odd header, at times
    data += b"".join(written(row) + (b"\r\n" if crlf else b"\n") for row in rows)
    data += b"\n".join(junk[1:])
    with mock.patch.object(source, "READ_BLOCK", block):
        batches = list(record_batches(io.BytesIO(data), ByteRange(), chunk, limit))
        judged = 2 if len(batches[0].records) == 1 else 1
        end = judged_end(io.BytesIO(data), chunk, limit)
        first = read(data, 0, end, rows=chunk, limit=limit)[0]
        if end < len(data):
            assert starts(data, [end], limit) == [end]
    assert first == [record for batch in batches[:judged] for record in batch.records]
    assert end <= len(data) + 1  # + 1: a last line without its line break


def test_the_first_lines_of_a_file_of_lines_end_after_their_line_breaks(monkeypatch):
    monkeypatch.setattr(source, "READ_BLOCK", 64)
    data = b'{"a": 1}\r\n\n' + b"x" * 300 + b"\n{}\n{}"  # a line over the limit of 100
    ends = [first_lines_end(io.BytesIO(data), n, 100) for n in (1, 2, 3, 4, 5, 9)]
    assert ends == [10, 11, 312, 315, 318, 318]  # 318: one past the end, the last line's break
