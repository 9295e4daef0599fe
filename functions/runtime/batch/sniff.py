"""What a CSV or JSONL input is when it is not what its name says, from its first bytes.

An NPY named .csv was told to save as "CSV UTF-8" in Excel, JSON Lines named .csv that the
header lacked every column, a CSV named .jsonl that none of its rows could be scored (each "not
valid JSON"). A Parquet file, an Excel workbook or a Feather file renamed to `.csv` (how many
"convert" one) was told it was "UTF-16 text without a byte order mark" and to save it as UTF-8;
renamed to `.jsonl`, each of its lines was a bad row. Inside a `.gz` nothing was sniffed: CSV in
`rows.jsonl.gz` failed row by row, an NPY or a second gzip in `rows.csv.gz` as "not UTF-8"
(hunt_csvquirks 2, 3).
"""

from __future__ import annotations

import re
from typing import IO

import orjson

from functions.runtime.errors import BadRequest

GZIP_MAGIC = b"\x1f\x8b"
NPY_MAGIC = b"\x93NUMPY"

# Tables batch does not read, by their first bytes: (what it is, pandas' reader, its extension).
# A Parquet file's magic is followed by a binary page header (0x15 and so on) and Arrow's by a
# NUL: a CSV whose first column is named PAR1 or ARROW1 is text there, and is read.
_TABLES = (
    (
        rb"PAR1[^\t\n\r\x20-\x7e]",
        "a Parquet file (it starts with PAR1)",
        "read_parquet",
        ".parquet",
    ),
    (rb"ARROW1\x00", "a Feather (Arrow) file (it starts with ARROW1)", "read_feather", ".feather"),
    (
        rb"PK\x03\x04",
        "a zip archive (it starts with PK), as an Excel .xlsx workbook is",
        "read_excel",
        ".xlsx",
    ),
    (
        rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        "an Excel 97-2003 workbook (.xls)",
        "read_excel",
        ".xls",
    ),
)


def refuse_compressed(head: bytes, key: str, *, inside_gzip: bool = False) -> None:
    """A gzip stream under a plain name, or a second one inside a `.gz`."""
    if not head.startswith(GZIP_MAGIC):
        return
    if inside_gzip:
        raise BadRequest(
            f"{key}: the file is gzip-compressed twice (its inflated bytes are gzip again); "
            "compress it once: gunzip it, then gzip the plain file"
        )
    raise BadRequest(
        f"{key}: the file is gzip-compressed; name it with .gz at the end (rows.csv.gz) "
        "or decompress it"
    )


class Peeked:
    """A stream whose first bytes are read ahead (`head`), then handed out again: a binary file
    is named before the CSV header reader, which may find no line end in it, reads it."""

    def __init__(self, stream: IO[bytes], size: int = 16) -> None:
        self.stream, self.head = stream, stream.read(size)
        self._ahead = self.head

    def read(self, size: int = -1) -> bytes:
        ahead, self._ahead = self._ahead, b""
        if size < 0:
            return ahead + self.stream.read()
        if len(ahead) >= size:
            self._ahead = ahead[size:]
            return ahead[:size]
        return ahead + self.stream.read(size - len(ahead))


def refuse_binary(head: bytes, key: str, named: str, *, compressed: bool = False) -> None:
    """Raise where the first bytes `head` are a gzip stream under a plain name (or a second one
    in a `.gz`) or a table of a format batch does not read."""
    refuse_compressed(head, key, inside_gzip=compressed)
    gz = ".gz" if compressed else ""
    table = next((found for found in _TABLES if re.match(found[0], head)), None)
    if table is None:
        return
    _, found, reader, extension = table
    name = key.rsplit("/", 1)[-1]
    stem = name[: -len(f".{named}{gz}")] if name.lower().endswith(f".{named}{gz}") else name
    raise BadRequest(
        f"{key}: the file is {found}, not .{named}{gz}: batch reads no such file, and renaming "
        "does not convert one; write it as CSV and upload that (pandas: "
        f"pd.{reader}({stem + extension!r}).to_csv({stem + '.csv'!r}, index=False))"
    )


def refuse_other_format(head: bytes, key: str, named: str, *, compressed: bool = False) -> None:
    """Raise where `head` (the first line or record) is text of another format than `named`
    ("csv" or "jsonl"), or an NPY; `compressed`: read inflated from a `.gz`."""
    gz = ".gz" if compressed else ""
    line = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if b"\x00" in head[:64] and not head.startswith(NPY_MAGIC):
        return  # UTF-16 text: its encoding is what the reader names
    if head.startswith(NPY_MAGIC):
        found, fix = "an NPY array (it starts with numpy's magic)", "name it .npy"
        if compressed:
            fix = "upload the .npy itself (an NPY is read uncompressed)"
    elif named == "csv" and line.startswith((b"{", b"[")) and _json(line):
        found, fix = "JSON Lines (its first line is JSON)", f"name it .jsonl{gz}"
    elif (
        named == "jsonl" and b"," in line and not line.startswith((b"{", b"[")) and not _json(line)
    ):
        found, fix = "CSV (its first line is no JSON, and holds commas)", f"name it .csv{gz}"
    else:
        return
    raise BadRequest(f"{key}: the file is {found}, not .{named}{gz}: {fix}")


def _json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
