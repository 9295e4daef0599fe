"""Broken rows of a batch input cost only themselves: quotes that do not pair up, lines past the
row-size limit, JSON nested too deep or of the wrong kind, a byte order mark, a decimal comma.
Each bad row is reported on its own line, the rows around it scored with their own numbers.
(Whole-file problems, which end a run with a failed summary: test_batch_broken_files.py.)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from tests.runtime.test_batch_broken_files import HEADER, OUT, score, store

__all__ = ["store"]  # the fixture, used by name


def test_an_object_for_an_input_says_so(store: LocalStore, tmp_path: Path) -> None:
    """numpy makes a JSON object a 0-d array: the reason said "got []"."""
    data = b'{"x": {"a": 1}}\n{"x": [1, 2, 3, 4]}\n'
    summary, errors = score(store, tmp_path, "object.jsonl", data)
    assert summary["scored_rows"] == 1
    assert errors == [
        {
            "line": 1,
            "error": "input 'x' must have shape [4] per row; got a JSON object (fields by name "
            "need --features)",
        }
    ]


def test_a_line_nested_5000_deep_is_one_bad_row(store: LocalStore, tmp_path: Path) -> None:
    deep = '{"x": ' + "[" * 5000 + "]" * 5000 + "}"
    lines = ['{"x": [1, 2, 3, 4]}', deep, '{"x": [5, 6, 7, 8]}']
    summary, errors = score(store, tmp_path, "deep.jsonl", "\n".join(lines).encode())
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        2,
        1,
    )
    # Python 3.11/3.12's json stops at its recursion limit; 3.13's parses it, and the input
    # is refused for its depth: one bad row either way, the depth named.
    assert errors in (
        [{"line": 2, "error": "not valid JSON: nested too deeply"}],
        [
            {
                "line": 2,
                "error": "input 'x' must have shape [4] per row; got lists nested over 64 deep",
            }
        ],
    )


def test_a_byte_order_mark_does_not_cost_the_first_row(store: LocalStore, tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + b'{"x": [1, 2, 3, 4]}\n{"x": [5, 6, 7, 8]}\n'
    summary, errors = score(store, tmp_path, "bom.jsonl", data)
    assert (summary["scored_rows"], summary["failed_rows"], errors) == (2, 0, [])
    csv_summary, _ = score(
        store, tmp_path, "bom.csv", b"\xef\xbb\xbf" + f"{HEADER}\n1,2,3,4\n".encode()
    )
    assert (csv_summary["status"], csv_summary["scored_rows"]) == ("succeeded", 1)


def test_an_unclosed_quote_is_a_bad_row_and_the_count_stays_right(
    store: LocalStore, tmp_path: Path
) -> None:
    data = f'{HEADER}\n1,2,3,4\n"5,6,7,8\n9,10,11,12\n'.encode()
    summary, errors = score(store, tmp_path, "quote.csv", data)
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (3, 2, 1)
    assert errors == [{"line": 3, "error": UNBALANCED}]
    output = store.get_bytes(f"{OUT}/quote.csv").decode().splitlines()
    assert len(output) == 1 + 2  # header and the two scored rows


def test_a_stray_quote_before_a_quoted_field_over_lines_costs_its_own_line(
    store: LocalStore, tmp_path: Path
) -> None:
    """The stray quote on line 3 was closed by the next quoted field's opening (line 6,
    pandas' multi-line note): lines 3-6 were one bad row ("',' expected after '"'"), and so on
    in pairs: 3 of 7 good rows scored, the rest neither scored nor listed."""
    data = (
        f'id,note,{HEADER}\na,n,1,2,3,4\nb,"stray,1,2,3,4\nc,n,5,6,7,8\nd,n,1,2,3,4\n'
        'e,"multi\nline, ""q""",1,2,3,4\nf,n,5,6,7,8\ng,"another\nnote",1,2,3,4\nh,n,1,2,3,4\n'
    )
    summary, errors = score(store, tmp_path, "stray.csv", data.encode())
    assert errors == [{"line": 3, "error": UNBALANCED}]
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (8, 7, 1)
    output = store.get_bytes(f"{OUT}/stray.csv").decode()
    rows = list(csv.reader(io.StringIO(output, newline="")))
    assert [row[0] for row in rows[1:]] == ["a", "c", "d", "e", "f", "g", "h"]
    assert rows[4][1] == 'multi\nline, "q"'


def test_a_quote_inside_an_unquoted_field_is_a_character(store: LocalStore, tmp_path: Path) -> None:
    """As the csv module and pandas read `good 5" screen`: an odd number of quotes in such a
    field made its row a bad row (3 of 8 rows lost), an even number did not (batch hunt)."""
    notes = ['good 5" screen', "bad film", 'great "acting" here', 'awful 7" tv', "nice",
             '"quoted, good"', 'a"b"c"d good', "bad"]  # fmt: skip
    lines = [f"{i},{note},1,2,3,4" for i, note in enumerate(notes)]
    data = "\n".join([f"id,note,{HEADER}", *lines]) + "\n"
    summary, errors = score(store, tmp_path, "inch.csv", data.encode())
    assert errors == []
    assert (summary["rows"], summary["scored_rows"]) == (8, 8), summary
    output = store.get_bytes(f"{OUT}/inch.csv").decode()
    rows = list(csv.reader(io.StringIO(output, newline="")))
    expected = list(csv.reader(io.StringIO(data, newline="")))
    assert [row[:2] for row in rows[1:]] == [row[:2] for row in expected[1:]]


UNBALANCED = (
    "not a valid CSV row: its quotes do not pair up (a quoted field opens here and does not "
    "close before the end of the file or within AIAAS_BATCH_MAX_LINE_BYTES; a quote inside a "
    'field is written twice: "5"" screen")'
)


def test_a_field_spanning_lines_is_one_row(store: LocalStore, tmp_path: Path) -> None:
    # pandas writes a cell holding a line break as a quoted field over two lines: one record
    # (RFC 4180), echoed as read; it was two bad rows. Rows after it keep their line numbers.
    data = f'id,{HEADER}\na,1,2,3,4\n"multi\nline",1,2,3,4\n"b ""q""",5,6,7,8\nc,x,1,2,3\n'
    summary, errors = score(store, tmp_path, "span.csv", data.encode())
    assert errors == [{"line": 6, "error": "column 'x_0' is not a number: 'x'"}]
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (4, 3, 1)
    output = store.get_bytes(f"{OUT}/span.csv").decode()
    rows = list(csv.reader(io.StringIO(output, newline="")))
    assert [row[0] for row in rows[1:]] == ["a", "multi\nline", 'b "q"']
    assert '\n"multi\nline",1,2,3,4,' in output


def test_a_line_over_the_limit_is_a_bad_row_read_past_not_kept(
    store: LocalStore, tmp_path: Path
) -> None:
    """The default limit (1 MiB); AIAAS_BATCH_MAX_LINE_BYTES sets another, in a test below."""
    import tracemalloc

    from functions.runtime.batch.source import MAX_LINE_BYTES

    huge = '{"x": [' + "1, " * (16 * 1024 * 1024) + "1]}"  # a 48 MiB line
    lines = ['{"x": [1, 2, 3, 4]}', huge, '{"x": [5, 6, 7, 8]}', huge[:1000] + "]", "[9, 9, 9, 9]"]
    data = "\n".join(lines).encode()
    tracemalloc.start()
    try:
        summary, errors = score(store, tmp_path, "long.jsonl", data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (5, 3, 2)
    assert errors[0] == {
        "line": 2,
        "error": f"longer than {MAX_LINE_BYTES} bytes (AIAAS_BATCH_MAX_LINE_BYTES): not read",
    }
    assert errors[1]["line"] == 4  # short enough to read, and not valid JSON
    # Bounded by the read blocks (4 MiB) and the line limit, not by the 48 MiB line.
    assert peak < 24 << 20, f"peak {peak >> 20} MiB for a {len(data) >> 20} MiB input"


@pytest.mark.parametrize("cut", [3, 50, 150, 260, 300, 1000, 1510])
def test_long_lines_across_span_edges_are_counted_once(
    monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    import io

    from functions.runtime.batch import source

    monkeypatch.setattr(source, "READ_BLOCK", 64)
    lines = [b"a" * 10, b"b" * 500, b"c" * 20, b"d" * 1000, b"e" * 5]
    data = b"\n".join(lines) + b"\n"

    def read(start: int, end: int | None) -> list[bytes]:
        stream = io.BytesIO(data)
        stream.seek(max(start - 1, 0))
        span = source.ByteRange(start, end)
        batches = source.line_batches(stream, span, 3, max_line_bytes=100)
        return [line for _, batch in batches for line in batch]

    expected = [b"a" * 10, source.too_long(100, 500), b"c" * 20, source.too_long(100, 1000)]
    expected.append(b"e" * 5)
    assert read(0, None) == expected
    assert read(0, cut) + read(cut, None) == expected


def test_the_line_limit_is_a_setting(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_BATCH_MAX_LINE_BYTES", "30")
    data = b'{"x": [1, 2, 3, 4]}\n{"x": [1.0000, 2.0000, 3.0000, 4.0000]}\n'
    summary, errors = score(store, tmp_path, "limit.jsonl", data)
    assert (summary["scored_rows"], errors) == (
        1,
        [{"line": 2, "error": "longer than 30 bytes (AIAAS_BATCH_MAX_LINE_BYTES): not read"}],
    )


def test_a_decimal_comma_is_named_in_the_bad_row(store: LocalStore, tmp_path: Path) -> None:
    # A comma-decimal locale's "5,1", quoted in a comma-separated file: "is not a number: '5,1'"
    # left the user to guess which of two commas was wrong.
    summary, errors = score(store, tmp_path, "eu.csv", f'{HEADER}\n"5,1",2,3,4\n1,2,3,4\n'.encode())
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 1)
    assert errors == [
        {
            "line": 2,
            "error": "column 'x_0' is not a number: '5,1' (write decimals with a point, 5.1, "
            "and no thousands separator)",
        }
    ]
