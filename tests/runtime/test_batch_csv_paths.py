"""The CSV decoder's three routes give the same chunks and the same output files.

A chunk is read as plain numbers by simdjson when it can be, else by numpy's parser, else line by
line by csv and float(), which also names each bad row. Each case below is decoded by the
route it takes and by the per-row route, and the results must match bit for bit; end to end,
chunk sizes that send the same rows down different routes must write the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch.csv import CsvDecoder
from functions.runtime.batch.csv_header import csv_layout
from functions.runtime.batch.numbers import plain_numbers
from functions.runtime.batch.scoring import Chunk, RowError
from functions.runtime.batch.text import cut_line_ends, decode_lines
from functions.runtime.manifest import ModelManifest
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.batch_support import (
    LABELS,
    published_store,
    read_csv,
    reference_logits,
    run,
)

X = "x_0,x_1,x_2,x_3"
GOOD = [f"{i}.5,-{i + 1},{i}e-3,{i * 7}" for i in range(20)]
OUT = "batch/iris/output"
TEXT = "id,x_0,x_1,x_2,x_3,note"
NOTED = [f"r{i},{g},note {i}" for i, g in enumerate(GOOD)]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> ModelManifest:
    path = onnx_factory.linear_classifier(tmp_path_factory.mktemp("model") / "iris.onnx")
    return onnx_factory.manifest_for(path, "iris", "1", labels=LABELS)


def route(decoder: CsvDecoder, lines: list[bytes]) -> str:
    """Which route `decoder.chunk` takes for `lines`."""
    # CRLF: the line breaks' CRs go; a CR inside a line is not plain
    if plain_numbers(cut_line_ends(lines), len(decoder.layout.columns)) is not None:
        return "plain"
    if decoder._mixed_chunk(len(lines), 2, lines) is not None:
        return "mixed"
    text, records, _, _ = decode_lines(2, lines)
    return "numpy" if decoder._parse_fast(text, records) is not None else "per-row"


def assert_same(chunk: Chunk, reference: Chunk) -> None:
    assert (chunk.lines, chunk.records, chunk.errors) == (
        reference.lines,
        reference.records,
        reference.errors,
    )
    np.testing.assert_array_equal(chunk.good, reference.good)
    assert chunk.features.keys() == reference.features.keys()
    for name, values in chunk.features.items():
        assert values.dtype == reference.features[name].dtype
        assert values.tobytes() == reference.features[name].tobytes()  # bit for bit, -0.0 too


CASES = [
    (
        "plain",
        X,
        ["1,2,3,4", "-0.5,1e-7,2E3,123456789012345678", "0.1,0.2,3e38,-0.0", " 1.5, 2.5 ,\t3,4"],
    ),
    ("plain", X, ["1,2,3,4\r", "5,6,7,8\r"]),  # CRLF
    ("plain", X, ["1,2,3,4\r\r", "5,6,7,8\r"]),  # CRs that end a line all go, as in csv
    ("plain", X, ["1,2,3,4\r", *GOOD, "5,6,7,8\r\r"]),  # LF lines among CRLF ones
    # A CR inside a line is the line's own: a bad row, never read as 5,6,7,8 or 1,23,4.
    ("per-row", X, ["1,2,3,4", "5,6\r,7,8", "1,2\r3,4", "9,10,11,12"]),
    ("mixed", X, [f"{g}\r" for g in GOOD[:9]] + ["1,2\r3,4\r", '"1\r",2,3,4\r']),  # CRLF
    ("plain", "id,x_3,truth,x_1,x_0,x_2", ["7,1,0,2,3,4", "8,5,1,6,7,8"]),  # extra numeric columns
    ("numpy", X, ["nan,1,2,3", "+1,.5,1.,inf", "1,2,3,4"]),  # not JSON numbers; non-finite rows
    ("numpy", X, ["-0,1,2,3"]),  # the integer -0 keeps its sign
    ("numpy", X, ["1,2,3,4", "", "  ", "5,6,7,8"]),  # blank lines are skipped, still counted
    ("mixed", "id,x_0,x_1,x_2,x_3", ["r1,1,2,3,4", "r2,5,6,7,8"]),  # a text column
    ("numpy", "id,x_0,x_1,x_2,x_3", ["r1,+1,2,3,4", "r2,5,6,7,8"]),  # +1: not a JSON number
    # A text column with a few odd lines: the model's cells decide (every line was odd).
    ("mixed", TEXT, [*NOTED[:5], "r,1,2,abc,4,n", *NOTED[5:]]),
    ("mixed", TEXT, [*NOTED[:5], 'r,1,2,3,4,"a,b"', *NOTED[5:], 'r,1,2,3,4,say "hi"']),
    ("mixed", TEXT, [*NOTED[:5], "r,1,2,3,4,a\rb", "r,1,2,3,4,a\0b", b"r,1,2,3,4,\xff", *NOTED]),
    ("mixed", TEXT, [*NOTED, "r,1,2,3,4", "r,1,2,3,4,n,extra", "", "r,1,,3,4,n", ",1,2,3,4,"]),
    ("mixed", "x_3,id,x_1,note,x_0,x_2", [*(f"{i},r,1,n,2,3" for i in range(9)), "1,r,2,n,x,3"]),
    ("numpy", X, ["1,2,3,4", "1e400,2,3,4"]),  # overflows to inf: a non-finite row
    ("numpy", X, ["1,2,3,18446744073709551616", "123456789012345678901234567890,2,3,4"]),
    ("numpy", X, ["1,2,3,-7.77e307", "5,6,7,8"]),  # the plain route's line-end sentinel
    ("per-row", X, ["1,2,3,4", "1,2,abc,4", "5,6,7,8"]),  # a bad row in the middle
    # A few odd lines among many plain ones: plain numbers for these, the careful path for those.
    ("mixed", X, [*GOOD[:3], "1,2,abc,4", *GOOD[3:6], "1,,3,4", *GOOD[6:]]),
    ("mixed", X, [*GOOD[:4], "1,2,3", "", "  ", *GOOD[4:], "1,2,3,4,5"]),
    ("mixed", X, [*GOOD[:2], '"1.5",2,3,4', "nan,1,2,3", *GOOD[2:], "1,2,3,4\r"]),  # odd, fine
    ("mixed", "id,x_3,truth,x_1,x_0,x_2", [f"{i},{g},0" for i, g in enumerate(GOOD)] + ["9,a"]),
    ("mixed", X, [",1,2,3", *GOOD, "1,2,3,"]),
    ("mixed", X, [*GOOD, b"\xff,2,3,4"]),  # not UTF-8
    ("per-row", X, [*GOOD, "+1,2,3,4", "1,2,abc,4"]),  # +1 looks plain, is not JSON: all careful
    ("per-row", X, [*GOOD[:3], "a,b,c,d", "e,f,g,h"]),  # mostly odd: no gain in splitting
    ("per-row", X, ["1,2,3", "1,2,3,4,5", "5,6,7,8"]),  # missing and extra fields
    ("per-row", "id,x_0,x_1,x_2,x_3", ["r1,1,2,3,4", "r2,1,2", "r3,5,6,7,8"]),
    ("per-row", X, ["1,,3,4", "5,6,7,8"]),  # an empty field
    ("per-row", X, ["1_000,2,3,4", "5,6,7,8"]),  # float() takes 1_000, CSV readers do not
    ("per-row", X, ['"1.5",2,3,4', '5,"6",7,8']),  # quoted fields
    ("numpy", X, [b"\xff,2,3,4", "5,6,7,8"]),  # not UTF-8: that line is an error, the rest parse
]


@pytest.mark.parametrize(("expected_route", "header", "lines"), CASES)
def test_every_route_matches_the_per_row_parser(manifest, expected_route, header, lines):
    decoder = CsvDecoder(
        csv_layout(header.encode(), manifest, "a.csv"), manifest, skip_header=False
    )
    raw = [line if isinstance(line, bytes) else line.encode() for line in lines]
    assert route(decoder, raw) == expected_route
    assert_same(decoder.chunk(2, raw), decoder.per_row_chunk(2, raw))


class Counted(CsvDecoder):
    """A decoder that counts the records it reads carefully (csv and float(), line by line)."""

    careful = 0

    def _parse_slow(
        self, records: list[str], numbers: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[RowError]]:
        self.careful += len(records)
        return super()._parse_slow(records, numbers)


def test_a_text_columns_odd_cells_leave_the_other_lines_plain(tmp_path):
    """2% odd lines (a quoted note, a word in the model's column) in a file with a text column:
    only those are read carefully. Every line of such a file had something besides numbers, so
    one odd cell sent the whole chunk line by line (300,000 rows: 2.8 s instead of 0.5)."""
    path = onnx_factory.identity(tmp_path / "one.onnx", shape=["N", 1])
    one = onnx_factory.manifest_for(path, "one", "1")
    lines = [f"r{i},{i}.25,note {i}".encode() for i in range(500)]
    for i in range(0, 500, 50):
        lines[i] = f'r{i},{i}.25,"a, b"'.encode()
        lines[i + 1] = f"r{i},abc,n".encode()
        lines[i + 2] = f"r{i}, ,n".encode()  # an empty cell: a missing value, read carefully
    decoder = Counted(csv_layout(b"id,x,note", one, "a.csv"), one, skip_header=False)
    chunk = decoder.chunk(2, lines)
    assert decoder.careful == 30
    assert_same(chunk, decoder.per_row_chunk(2, lines))
    assert len(chunk.records) == 480 and chunk.errors[0] == RowError(
        3, "column 'x' is not a number: 'abc'"
    )


def test_bad_rows_are_named_the_same_on_every_route(manifest):
    decoder = CsvDecoder(csv_layout(X.encode(), manifest, "a.csv"), manifest, skip_header=False)
    chunk = decoder.chunk(2, [b"1,2,3,4", b"1,2,abc,4", b"1,2,3", b"", b"nan,1,2,3", b"5,6,7,8"])
    assert chunk.errors == [
        RowError(3, "column 'x_2' is not a number: 'abc'"),
        RowError(4, "has 3 fields; the header has 4"),
        RowError(
            6,
            "input 'x' value 0 is a missing value (NaN); this model takes finite numbers only: "
            "fill it in, or publish a model whose graph takes them (`aiaas publish` "
            "reads an XGBoost or LightGBM export's trees and a SimpleImputer as "
            "taking them; `--allow-nonfinite` for another graph, but not skl2onnx's "
            "scikit-learn forests, which send every missing value one way)",
        ),
    ]
    assert chunk.records == [b"1,2,3,4", b"5,6,7,8"]
    assert chunk.lines == 6


def test_a_comma_that_ends_the_rows_or_the_header_is_named(manifest):
    """Rows that all end in a comma (or a header that does) were told only "has 5 fields; the
    header has 4", every row, with no word of the comma."""
    rows = [b"1,2,3,4,", b"5,6,7,8, ", b"1,2,3,4,5"]
    decoder = CsvDecoder(csv_layout(X.encode(), manifest, "a.csv"), manifest, skip_header=False)
    row_comma = "(the row ends in a comma, which makes an empty last field: remove the commas"
    assert [e.reason for e in decoder.chunk(2, [*rows, *(g.encode() for g in GOOD)]).errors] == [
        f"has 5 fields; the header has 4 {row_comma} that end the rows, or name that column "
        "in the header)",
        f"has 5 fields; the header has 4 {row_comma} that end the rows, or name that column "
        "in the header)",
        "has 5 fields; the header has 4",  # its last field holds a value: no guess
    ]
    ended = CsvDecoder(
        csv_layout(f"id,{X},".encode(), manifest, "a.csv"), manifest, skip_header=False
    )
    assert [e.reason for e in ended.chunk(2, [b"r,1,2,3,4", b"r,1,2,3,4,"]).errors] == [
        "has 5 fields; the header has 6 (the header ends in a comma, which names an empty last "
        "column: remove that comma, or end each row in a comma too)"
    ]


def test_a_feature_models_bad_values_name_their_column(manifest):
    """A model with feature names: an empty cell was named by its column, but NaN, inf and a
    value past float32's range by the tensor ("input 'x' value 0"), 1e39 with no value at all
    ("cannot be cast to float32")."""
    named = replace(manifest, features=("sl", "sw", "pl", "pw"))
    decoder = CsvDecoder(csv_layout(b"id,sl,sw,pl,pw", named, "a.csv"), named, skip_header=False)
    chunk = decoder.chunk(2, [b"a,nan,1,2,3", b"b,1,inf,2,3", b"c,1,2,1e39,3", b"d,5,6,7,8"])
    assert [(e.position, e.reason.split(";")[0]) for e in chunk.errors] == [
        (2, "column 'sl' is a missing value (NaN)"),
        (3, "column 'sw' is inf"),
        (4, "column 'pl' is 1e+39, out of float32's range (±3.403e+38)"),
    ]
    assert chunk.records == [b"d,5,6,7,8"]


def test_a_cr_inside_a_crlf_line_is_a_bad_row_not_a_deleted_byte(manifest):
    """Batch deleted every CR of a CRLF chunk: `5,6\r,7,8` scored as 5,6,7,8, `1,2\r3` as 1,23."""
    decoder = CsvDecoder(csv_layout(X.encode(), manifest, "a.csv"), manifest, skip_header=False)
    lines = [f"{g}\r".encode() for g in GOOD[:8]] + [b"5,6\r,7,8\r", b"1,2\r3,4,5\r"]
    chunk = decoder.chunk(2, lines)
    assert [e.position for e in chunk.errors] == [10, 11]
    assert all("carriage return (CR) outside quotes" in e.reason for e in chunk.errors)
    assert chunk.records == [g.encode() for g in GOOD[:8]]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


def test_chunk_sizes_that_change_routes_write_the_same_bytes(store, tmp_path):
    x = np.random.default_rng(3).normal(size=(12, 4))
    good = [",".join([str(i), *map(repr, row)]) for i, row in enumerate(x.tolist())]
    lines = [
        "id,x_0,x_1,x_2,x_3",
        *good[:3],
        "90,1,2,oops,4",  # bad rows in the middle of a chunk
        *good[3:6],
        "",
        "91,1,2,3",  # a missing field
        '92,"1.5",2,3,4',  # quoted: fine
        *good[6:9],
        "93,1,2,3,4,5",  # an extra field
        *good[9:],  # and no line break after the last line
    ]
    data = "\r\n".join(lines).encode()
    outputs = set()
    for rows in (1, 2, 5, 4096):  # 1: every good row is plain on its own; 4096: one chunk
        key = f"batch/iris/input/c{rows}.csv"
        store.put_bytes(key, data)
        summary = run(store, tmp_path, key, chunk_rows=rows)
        assert (summary["rows"], summary["scored_rows"], summary["failed_rows"]) == (16, 13, 3)
        output = store.get_bytes(f"{OUT}/c{rows}.csv")
        errors = store.get_bytes(f"{OUT}/c{rows}.csv.errors.jsonl")
        outputs.add((output, errors))
    assert len(outputs) == 1
    assert [json.loads(line) for line in errors.splitlines()] == [
        {"line": 5, "error": "column 'x_2' is not a number: 'oops'"},
        {"line": 10, "error": "has 4 fields; the header has 5"},
        {"line": 15, "error": "has 6 fields; the header has 5"},
    ]
    rows = read_csv(store, f"{OUT}/c4096.csv")
    assert [r["id"] for r in rows] == [*map(str, range(6)), "92", *map(str, range(6, 12))]
    scored = np.delete(np.arange(len(rows)), 6)  # the quoted row is not one of x's
    logits = np.array([[float(r[f"pred_logits_{i}"]) for i in range(3)] for r in rows])
    np.testing.assert_array_equal(logits[scored].astype(np.float32), reference_logits(tmp_path, x))
    assert output.endswith(b"\n") and b"\r" not in output
