"""Broken input files end a batch run with a summary that says why, or cost only their bad rows.

Each case once crashed the run (no summary, the job pending forever, and on AWS a redelivery
until the dead-letter queue) or silently lost a row.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.batch_support import published_store, run

OUT = "batch/iris/output"
HEADER = "x_0,x_1,x_2,x_3"
JSON_ARRAY = (
    "the file is one JSON array, not JSON Lines (one record a line); write a record a line: "
    "jq -c '.[]' rows.json > rows.jsonl, or pandas' "
    "df.to_json('rows.jsonl', orient='records', lines=True)"
)


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


def score(store: LocalStore, tmp_path: Path, name: str, data: bytes) -> tuple[dict, list[dict]]:
    key = f"batch/iris/input/{name}"
    store.put_bytes(key, data)
    summary = run(store, tmp_path, key)
    errors = store.get_bytes(f"{OUT}/{name}.errors.jsonl") if summary["status"] != "failed" else b""
    return summary, [json.loads(line) for line in errors.splitlines()]


def npy_claiming(shape: str) -> bytes:
    """An .npy of 8 float32 values whose header gives `shape` (numpy writes any tuple of ints)."""
    head = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}".ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode() + bytes(32)


def npy_cut_short() -> bytes:
    """`np.save` of 1000 rows of 4 float32, its second half lost (an upload that stopped)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ones((1000, 4), dtype=np.float32))
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        (  # was "succeeded: scored 494 of 495 rows", rows 496-999 neither scored nor listed
            "cut.npy",
            npy_cut_short(),
            "the file ends before the [1000, 4] array its header promises (8064 of 16128 "
            "bytes, 496 whole rows of 1000): it was cut short; upload the whole file",
        ),
        (  # was "succeeded: scored 0 of 0 rows"
            "negative.npy",
            npy_claiming("(-1, 4)"),
            "its header gives shape [-1, 4], a negative size; the file is broken: write it "
            "again with numpy.save",
        ),
        (  # 2^61 x 4 x 4 bytes overflows int64: numpy's own memmap warned of the overflow
            "overflow.npy",
            npy_claiming("(2305843009213693952, 4)"),
            "its header gives shape [2305843009213693952, 4], more bytes than a file holds; the "
            "file is broken: write it again with numpy.save",
        ),
        (
            "cr.csv",
            f"{HEADER}\r1,2,3,4\r5,6,7,8\r".encode(),
            "lines end in a bare carriage return (CR), which batch does not read; save the file "
            "with LF or CRLF line endings",
        ),
        (
            "packed.csv",
            gzip.compress(f"{HEADER}\n1,2,3,4\n".encode()),
            "the file is gzip-compressed; name it with .gz at the end (rows.csv.gz) or "
            "decompress it",
        ),
        (
            "packed.jsonl",
            gzip.compress(b'{"x": [1, 2, 3, 4]}\n'),
            "the file is gzip-compressed; name it with .gz at the end (rows.csv.gz) or "
            "decompress it",
        ),
        (
            "cut.csv.gz",
            gzip.compress(
                f"{HEADER}\n".encode() + "".join(f"{i},2,3,4\n" for i in range(5000)).encode()
            )[:-200],
            "not a readable gzip stream: Compressed file ended before the end-of-stream marker "
            "was reached",
        ),
        (
            "excel.csv",
            f"{HEADER}\r\n1,2,3,4\r\n".encode("utf-16"),  # Excel's "Unicode text"
            "the header line is UTF-16 text (it starts with a UTF-16 byte order mark); batch "
            'reads UTF-8 CSV: save the file as UTF-8 ("CSV UTF-8" in Excel)',
        ),
        (
            "latin1.csv",
            "café,x_0,x_1,x_2,x_3\nA,1,2,3,4\n".encode("latin-1"),
            "the header line is not UTF-8 text (byte 0xe9 at offset 3); batch reads UTF-8 CSV: "
            'save the file as UTF-8 ("CSV UTF-8" in Excel)',
        ),
        (  # one JSON array named .jsonl: "shape [4] per row; got [2]", or a bad row a line
            "records.jsonl",
            b'[{"x": [1, 2, 3, 4]}, {"x": [5, 6, 7, 8]}]\n',
            JSON_ARRAY,
        ),
        ("pretty.jsonl", b'[\n  {"x": [1, 2, 3, 4]}\n]\n', JSON_ARRAY),
        (  # was 'the header line is not UTF-8 text ... save as "CSV UTF-8" in Excel'
            "array.csv",
            npy_cut_short()[:128] + bytes(16),
            "the file is an NPY array (it starts with numpy's magic), not .csv: name it .npy",
        ),
        (  # was "the header lacks column(s) x_0, ..."
            "lines.csv",
            b'{"x": [1, 2, 3, 4]}\n{"x": [5, 6, 7, 8]}\n',
            "the file is JSON Lines (its first line is JSON), not .csv: name it .jsonl",
        ),
        (  # was "none of the 2 rows could be scored", each "not valid JSON"
            "table.jsonl",
            f"{HEADER}\n1,2,3,4\n".encode(),
            "the file is CSV (its first line is no JSON, and holds commas), not .jsonl: name "
            "it .csv",
        ),
        (  # pandas' to_csv(encoding="utf-16-le"): no byte order mark; "the header lacks ..."
            "utf16le.csv",
            f"{HEADER}\n1,2,3,4\n".encode("utf-16-le"),
            "the header line is UTF-16 text without a byte order mark (a NUL byte every other "
            'byte); batch reads UTF-8 CSV: save the file as UTF-8 ("CSV UTF-8" in Excel, '
            "encoding='utf-8' in pandas)",
        ),
        (  # Excel's separator hint as the first line: "the header lacks column(s) ..."
            "sep.csv",
            f"sep=,\n{HEADER}\n1,2,3,4\n".encode(),
            "the first line is Excel's separator hint (sep=,), not the header: delete that "
            "line; batch reads the header from the first line",
        ),
        (  # was one "not valid UTF-8" bad row a line
            "excel.jsonl",
            '{"x": [1, 2, 3, 4]}\r\n'.encode("utf-16"),
            "the first line is UTF-16 text (it starts with a UTF-16 byte order mark); batch "
            "reads UTF-8 JSON Lines: save the file as UTF-8",
        ),
    ],
    ids=[
        "npy-cut-short",
        "npy-negative",
        "npy-overflow",
        "cr-only",
        "gzip-csv",
        "gzip-jsonl",
        "gzip-cut-short",
        "utf-16",
        "latin-1",
        "jsonl-one-array",
        "jsonl-pretty-array",
        "npy-named-csv",
        "jsonl-named-csv",
        "csv-named-jsonl",
        "utf-16-no-bom",
        "excel-sep-line",
        "jsonl-utf-16",
    ],
)
def test_a_file_level_problem_is_a_failed_summary_naming_it(
    store: LocalStore, tmp_path: Path, name: str, data: bytes, error: str
) -> None:
    summary, _ = score(store, tmp_path, name, data)
    assert summary["status"] == "failed"
    assert summary["error"] == f"batch/iris/input/{name}: {error}"
    assert json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))["status"] == "failed"


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


@pytest.mark.parametrize("name", ["rows.csv.gz", "rows.jsonl.gz"])
def test_gzip_inputs_are_read_as_streams(store: LocalStore, tmp_path: Path, name: str) -> None:
    plain_name = name.removesuffix(".gz")
    if plain_name.endswith(".csv"):
        plain = f"{HEADER}\n1,2,3,4\n5,6,7,oops\n9,10,11,12\n".encode()
    else:
        plain = b'{"x": [1, 2, 3, 4]}\n{"x": [5, 6]}\n{"x": [9, 10, 11, 12]}\n'
    expected, expected_errors = score(store, tmp_path, plain_name, plain)
    expected_output = store.get_bytes(f"{OUT}/{plain_name}")
    store.delete(f"{OUT}/{plain_name}")
    store.delete(f"batch/iris/input/{plain_name}")  # else the two would share one output
    summary, errors = score(store, tmp_path, name, gzip.compress(plain))
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        expected["scored_rows"],
        expected["failed_rows"],
    )
    assert errors == expected_errors
    assert summary["output"] == f"{OUT}/{plain_name}"  # the output is not compressed
    assert store.get_bytes(f"{OUT}/{plain_name}") == expected_output


def test_a_sharded_gzip_run_is_one_shard(store: LocalStore, tmp_path: Path) -> None:
    from functions.runtime.batch.layout import parse_input_key
    from functions.runtime.batch.run import RunInput
    from functions.runtime.batch.shards import run_sharded_locally
    from tests.batch_support import pool, run_settings

    key = "batch/iris/input/big.csv.gz"
    store.put_bytes(key, gzip.compress(f"{HEADER}\n".encode() + b"1,2,3,4\n" * 1000))
    obj = parse_input_key(key)
    assert obj is not None
    summary = run_sharded_locally(
        store,
        pool(store, tmp_path),
        RunInput(obj, "aiaas-local", store.head(key)),
        3,
        run_settings(),
    )
    assert (summary["status"], summary["shards"], summary["scored_rows"]) == ("succeeded", 1, 1000)


def test_a_compressed_npy_is_refused_by_name(store: LocalStore, tmp_path: Path) -> None:
    summary, _ = score(store, tmp_path, "arrays.npy.gz", b"\x1f\x8b whatever")
    assert summary["status"] == "failed"
    assert "unsupported input format '.npy.gz'" in summary["error"]


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


@pytest.mark.parametrize(("name", "sep"), [("semi.csv", ";"), ("tabs.csv", "\t")])
def test_another_delimiter_is_named_in_the_failed_summary(
    store: LocalStore, tmp_path: Path, name: str, sep: str
) -> None:
    # Excel in a comma-decimal locale saves ';'-separated "CSV": the summary said only that
    # the header lacks x_0..x_3, which the user can see it has.
    data = f"{HEADER.replace(',', sep)}\n1{sep}2{sep}3{sep}4\n".encode()
    summary, _ = score(store, tmp_path, name, data)
    assert summary["status"] == "failed"
    assert f"(the header is one column; is the file {sep!r}-separated?" in summary["error"]


def test_a_column_named_in_another_case_is_named_in_the_failed_summary(
    store: LocalStore, tmp_path: Path
) -> None:
    # An export that capitalises its header: "the header lacks x_0, x_2" said nothing of the
    # X_0 and X_2 the user sees in it.
    summary, _ = score(store, tmp_path, "caps.csv", b"X_0 ,x_1,X_2,x_3\n1,2,3,4\n")
    assert summary["status"] == "failed"
    assert (
        "the header lacks column(s) x_0, x_2 (the header has X_0, X_2: names must match "
        "in case too)" in summary["error"]
    )


def test_a_headerless_file_whose_first_row_repeats_a_value_asks_for_the_header(
    store: LocalStore, tmp_path: Path
) -> None:
    # A first row of numbers read as a header: "names columns twice: 0" alone said nothing of
    # the header line the file lacks.
    summary, _ = score(store, tmp_path, "rows.csv", b"0,1,0,2\n1,2,3,4\n")
    assert summary["status"] == "failed"
    assert "the header names columns twice: 0 (is the header line missing?)" in summary["error"]


def test_columns_named_twice_pass_through_unless_the_model_reads_them(
    store: LocalStore, tmp_path: Path
) -> None:
    """Two `id` columns, or two unnamed ones an Excel export's trailing commas make, refused
    the whole file ("names columns twice: " and nothing, for the empty names); columns the
    model does not read are passed through as they are. A model column named twice is still
    refused: which of the two is meant is unknown."""
    data = f"id,id,{HEADER},,\n1,2,1,2,3,4,,\n3,4,5,6,7,8,,\n".encode()
    summary, errors = score(store, tmp_path, "twice.csv", data)
    assert (summary["status"], summary["scored_rows"], errors) == ("succeeded", 2, [])
    output = store.get_bytes(f"{OUT}/twice.csv").decode().splitlines()
    assert output[0].startswith(f"id,id,{HEADER},,,pred_") and output[1].startswith(
        "1,2,1,2,3,4,,,"
    )
    summary, _ = score(store, tmp_path, "model.csv", f"{HEADER},x_1\n1,2,3,4,5\n".encode())
    assert summary["status"] == "failed"
    assert summary["error"].endswith("the header names columns twice: x_1")


def test_a_gzip_bomb_is_refused_once_it_expands_past_the_ratio(
    store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A 356 KB .csv.gz sent through the control plane's 6 MB upload scored 142 MB of rows: the
    # upload limit meant nothing. Checked after 1 MB here (64 MB as shipped) to keep it quick.
    from functions.runtime.batch import formats

    monkeypatch.setattr(formats, "RATIO_CHECKED_AFTER", 1024 * 1024)
    bomb = gzip.compress((HEADER + "\n" + "1,2,3,4\n" * 400_000).encode())
    assert len(bomb) * formats.MAX_GZIP_RATIO < 3_200_000  # a few KB expanding to 3.2 MB
    summary, _ = score(store, tmp_path, "bomb.csv.gz", bomb)
    assert summary["status"] == "failed"
    assert "the gzip stream expands over 100x its size" in summary["error"]
    assert "refused as a decompression bomb" in summary["error"]
    assert not store.exists(f"{OUT}/bomb.csv")
    # Rows of real numbers compress a few times over, far below the ratio: scored whole.
    rows = np.random.default_rng(0).normal(size=(40_000, 4))
    text = HEADER + "\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n"
    summary, errors = score(store, tmp_path, "real.csv.gz", gzip.compress(text.encode()))
    assert (summary["status"], summary["scored_rows"], errors) == ("succeeded", 40_000, [])


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
