"""Broken input files end a batch run with a summary that says why, or cost only their bad rows.

Each case once crashed the run (no summary, the job pending forever, and on AWS a redelivery
until the dead-letter queue) or silently lost a row.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from tests.batch_support import published_store, run

OUT = "batch/iris/output"
HEADER = "x_0,x_1,x_2,x_3"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


def score(store: LocalStore, tmp_path: Path, name: str, data: bytes) -> tuple[dict, list[dict]]:
    key = f"batch/iris/input/{name}"
    store.put_bytes(key, data)
    summary = run(store, tmp_path, key)
    errors = store.get_bytes(f"{OUT}/{name}.errors.jsonl") if summary["status"] != "failed" else b""
    return summary, [json.loads(line) for line in errors.splitlines()]


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        (
            "cr.csv",
            f"{HEADER}\r1,2,3,4\r5,6,7,8\r".encode(),
            "lines end in a bare carriage return (CR), which batch does not read; save the file "
            "with LF or CRLF line endings",
        ),
        (
            "packed.csv",
            gzip.compress(f"{HEADER}\n1,2,3,4\n".encode()),
            "the file is gzip-compressed; batch reads plain text: decompress it first",
        ),
        (
            "packed.jsonl",
            gzip.compress(b'{"x": [1, 2, 3, 4]}\n'),
            "the file is gzip-compressed; batch reads plain text: decompress it first",
        ),
    ],
    ids=["cr-only", "gzip-csv", "gzip-jsonl"],
)
def test_a_file_level_problem_is_a_failed_summary_naming_it(
    store: LocalStore, tmp_path: Path, name: str, data: bytes, error: str
) -> None:
    summary, _ = score(store, tmp_path, name, data)
    assert summary["status"] == "failed"
    assert summary["error"] == f"batch/iris/input/{name}: {error}"
    assert json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))["status"] == "failed"


def test_a_line_nested_5000_deep_is_one_bad_row(store: LocalStore, tmp_path: Path) -> None:
    deep = '{"x": ' + "[" * 5000 + "]" * 5000 + "}"
    lines = ['{"x": [1, 2, 3, 4]}', deep, '{"x": [5, 6, 7, 8]}']
    summary, errors = score(store, tmp_path, "deep.jsonl", "\n".join(lines).encode())
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        2,
        1,
    )
    assert errors == [{"line": 2, "error": "not valid JSON: nested too deeply"}]


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
    assert errors == [{"line": 3, "error": "not a valid CSV row: unexpected end of data"}]
    output = store.get_bytes(f"{OUT}/quote.csv").decode().splitlines()
    assert len(output) == 1 + 2  # header and the two scored rows
