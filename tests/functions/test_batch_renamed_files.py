"""Files of another format than their name, as people rename them (hunt_csvquirks 2, 3, 4),
dropped into S3 (moto's server) and into a directory store and scored by the batch function
from the SQS message S3 sends: each fails with a summary that says what the file is and what to
upload instead.

A Parquet file, an Excel workbook or a Feather file renamed to `.csv` was told it was "UTF-16
text without a byte order mark" and to save it as UTF-8; renamed to `.jsonl`, every line was a
bad row. Inside a `.gz` nothing was sniffed: CSV in `rows.jsonl.gz` failed row by row ("not
valid JSON"), JSON Lines in `rows.csv.gz` as "the header lacks column(s)", an NPY or a second
gzip as "not UTF-8"; and a plain file named `.gz` as "Not a gzipped file (b'x_')".
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.store import ObjectStore
from tests.batch_support import publish_classifier, scored

IN, OUT = "batch/iris/input", "batch/iris/output"
CSV = b"id,x_0,x_1,x_2,x_3\na,1,2,3,4\nb,0.5,0,-1,2\n"
JSONL = b'{"id": "a", "x": [1, 2, 3, 4]}\n{"id": "b", "x": [0.5, 0, -1, 2]}\n'


def parquet() -> bytes:
    """A Parquet file's frame: its magic at both ends (what pandas' to_parquet writes)."""
    return b"PAR1\x15\x04\x15\x10\x15\x14L\x15\x02\x15\x00\x12\x00\x00" + bytes(64) + b"PAR1"


def xlsx() -> bytes:
    """An .xlsx workbook is a zip archive of XML parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", '<workbook>"a\nb"</workbook>')
    return buffer.getvalue()


def npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ones((2, 4), dtype=np.float32))
    return buffer.getvalue()


XLS = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
FEATHER = b"ARROW1\x00\x00" + bytes(64) + b"ARROW1"
TABLE = "batch reads no such file, and renaming does not convert one; write it as CSV"

# name -> (bytes, what its failed summary says after "batch/iris/input/<name>: ")
RENAMED: dict[str, tuple[bytes, str]] = {
    "day.csv": (
        parquet(),
        f"the file is a Parquet file (it starts with PAR1), not .csv: {TABLE} and upload that "
        "(pandas: pd.read_parquet('day.parquet').to_csv('day.csv', index=False))",
    ),
    "book.csv": (
        xlsx(),
        "the file is a zip archive (it starts with PK), as an Excel .xlsx workbook is, not "
        f".csv: {TABLE} and upload that (pandas: pd.read_excel('book.xlsx').to_csv('book.csv', "
        "index=False))",
    ),
    "old.csv": (
        XLS,
        f"the file is an Excel 97-2003 workbook (.xls), not .csv: {TABLE} and upload that "
        "(pandas: pd.read_excel('old.xls').to_csv('old.csv', index=False))",
    ),
    "frame.jsonl": (
        FEATHER,
        "the file is a Feather (Arrow) file (it starts with ARROW1), not .jsonl: "
        f"{TABLE} and upload that (pandas: pd.read_feather('frame.feather').to_csv('frame.csv', "
        "index=False))",
    ),
    "day.csv.gz": (
        gzip.compress(parquet()),
        f"the file is a Parquet file (it starts with PAR1), not .csv.gz: {TABLE} and upload "
        "that (pandas: pd.read_parquet('day.parquet').to_csv('day.csv', index=False))",
    ),
    "table.jsonl.gz": (
        gzip.compress(CSV),
        "the file is CSV (its first line is no JSON, and holds commas), not .jsonl.gz: name it "
        ".csv.gz",
    ),
    "records.csv.gz": (
        gzip.compress(JSONL),
        "the file is JSON Lines (its first line is JSON), not .csv.gz: name it .jsonl.gz",
    ),
    "array.csv.gz": (
        gzip.compress(npy()),
        "the file is an NPY array (it starts with numpy's magic), not .csv.gz: upload the .npy "
        "itself (an NPY is read uncompressed)",
    ),
    "twice.csv.gz": (
        gzip.compress(gzip.compress(CSV)),
        "the file is gzip-compressed twice (its inflated bytes are gzip again); compress it "
        "once: gunzip it, then gzip the plain file",
    ),
    "plain.csv.gz": (  # what the job API stores of a .gz sent with Content-Encoding: gzip
        CSV,
        "the file is not gzip-compressed (its first bytes are b'id', not gzip's 1f 8b): name it "
        "without .gz, or gzip it (a body sent to the job API with Content-Encoding: gzip is "
        "stored inflated: send a .gz file without that header)",
    ),
}


@pytest.fixture
def published(store: ObjectStore, tmp_path: Path) -> ObjectStore:
    publish_classifier(store, tmp_path)
    return store


def score(store: ObjectStore, tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    return scored(store, tmp_path, "iris", name, data)


@pytest.mark.parametrize("name", RENAMED)
def test_a_file_of_another_format_fails_saying_what_it_is(
    published: ObjectStore, tmp_path: Path, name: str
) -> None:
    data, said = RENAMED[name]
    summary = score(published, tmp_path, name, data)
    assert (summary["status"], summary["rows"]) == ("failed", 0)
    assert summary["error"] == f"{IN}/{name}: {said}"


NAMED_AS_THEY_ARE = [
    ("rows.csv.gz", gzip.compress(CSV), 2),
    ("rows.jsonl.gz", gzip.compress(JSONL), 2),
    ("short.jsonl.gz", gzip.compress(b"[1, 2, 3, 4]\n[4, 3, 2, 1]\n[1, 1, 1, 1]\n"), 3),
    ("one.jsonl.gz", gzip.compress(b"[1,2,3,4]"), 1),  # shorter than what is sniffed
    ("rows.csv", b"\xef\xbb\xbf" + CSV.replace(b"\n", b"\r\n"), 2),
    ("rows.jsonl", JSONL, 2),
    # a first column named as a table's magic (parameters PAR1, PAR2, ...) is text, read
    ("params.csv", b"PAR1,x_0,x_1,x_2,x_3\n7,1,2,3,4\n", 1),
    ("arrows.csv", b"ARROW1,x_0,x_1,x_2,x_3\r\n7,1,2,3,4\r\n", 1),
    ("pk.csv", b"PK,x_0,x_1,x_2,x_3\n7,1,2,3,4\n", 1),
]


# ids by name: gzip writes the time into its header, and pytest-xdist workers must collect
# the same ids
@pytest.mark.parametrize(
    ("name", "data", "rows"), NAMED_AS_THEY_ARE, ids=[n for n, _, _ in NAMED_AS_THEY_ARE]
)
def test_files_named_as_they_are_still_score_every_row(
    published: ObjectStore, tmp_path: Path, name: str, data: bytes, rows: int
) -> None:
    summary = score(published, tmp_path, name, data)
    scored = (summary["status"], summary["rows"], summary["scored_rows"], summary["failed_rows"])
    assert scored == ("succeeded", rows, rows, 0)
