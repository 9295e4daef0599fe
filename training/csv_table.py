"""Reading a CSV data set into named columns, refusing what a spreadsheet export gets wrong.

Files saved by Excel start with a byte order mark and end lines with CRLF: both are read as
plain UTF-8 (the mark is not part of the first column's name). Spaces around a header name are
not part of it, as batch scoring reads a header: a model trained on `" b "` wanted a column its
own file's batch run could not give it. A file in another encoding, a
header naming a column twice, a file separated by `;` or tabs, and a ragged line are each one
`DataError` naming the line to fix, never a traceback or a silently dropped column.
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime import csv_fields
from training.errors import DataError

# What other exporters separate fields with (European Excel: `;`).
_OTHER_DELIMITERS = (";", "\t", "|")


def read_csv(path: Path, limit: int | None) -> tuple[dict[str, np.ndarray], bool, np.ndarray]:
    """Columns by header name, whether every row was read, and the line each record starts on."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv_fields.reader(handle)  # a long text field is data, not an error
            header = next(reader, None)
            if header:
                header = [name.strip() for name in header]
            if not header:
                raise DataError(f"{path.name} is empty; it needs a header row and data rows")
            rows, lines = _records(reader, limit)
            complete = limit is None or next((r for r in reader if r), None) is None
    except UnicodeDecodeError:
        raise DataError(not_utf8(path)) from None
    except csv.Error as exc:  # whatever the reader still refuses: named, never a traceback
        raise DataError(f"{path.name} line {reader.line_num} is not valid CSV: {exc}") from None
    _check_header(path.name, header)  # before widths: a `;` file's rows are ragged too
    _check_widths(path, header, rows, lines)
    if not rows:
        raise DataError(f"{path.name} has a header but no data rows")
    table = np.array(rows, dtype=object).reshape(len(rows), len(header))
    columns = {name: table[:, i] for i, name in enumerate(header)}
    return columns, complete, np.array(lines, dtype=np.int64)


def _records(reader: Any, limit: int | None) -> tuple[list[list[str]], list[int]]:
    """Up to `limit` records and the line each starts on (a quoted field may span lines)."""
    rows: list[list[str]] = []
    lines: list[int] = []
    while limit is None or len(rows) < limit:
        start = reader.line_num + 1
        row = next(reader, None)
        if row is None:
            break
        if not row:  # a blank line, skipped as batch scoring skips it
            continue
        rows.append(row)
        lines.append(start)
    return rows, lines


def _check_header(file: str, header: list[str]) -> None:
    if looks_like_data(header):
        raise DataError(
            f"{file} line 1 holds numbers only ({', '.join(header[:4])}"
            f"{', ...' if len(header) > 4 else ''}): it looks like data; the file needs a "
            "header row naming its columns"
        )
    found = next((d for d in _OTHER_DELIMITERS if d in header[0]), None)
    if len(header) == 1 and found is not None:
        raise DataError(
            f"{file} line 1 reads as one column {header[0][:60]!r}, separated by {found!r}; "
            "save the file with commas between fields"
        )
    # A dict of columns keeps the last of two equal names: the first would vanish unseen.
    twice = [name for name, count in Counter(header).items() if count > 1]
    if twice:
        name = twice[0]
        places = [str(i + 1) for i, h in enumerate(header) if h == name]
        raise DataError(
            f"{file} line 1 names column {name!r} {len(places)} times (columns "
            f"{', '.join(places)}); give each column its own name"
        )


def _check_widths(path: Path, header: list[str], rows: list[list[str]], lines: list[int]) -> None:
    for number, row in zip(lines, rows, strict=True):
        if len(row) != len(header):
            hint = _unclosed_quote(path, number) if len(row) < len(header) else ""
            raise DataError(
                f"{path.name} line {number} has {len(row)} fields; the header has "
                f"{len(header)}{hint}"
            )


def _unclosed_quote(path: Path, number: int) -> str:
    """A hint for a short record whose first line holds an odd number of quotes: a quoted field
    opened there ran on, commas and lines and all (`"0.1,0.2,gold` read as 1 field). Read
    again only on this error path."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        line = next(itertools.islice(handle, number - 1, None), "")
    quotes = line.count('"')
    if quotes % 2 == 0:
        return ""
    return (
        f"; it holds an odd number of quotes ({quotes}): a quoted field opens "
        'there and does not close (a quote inside a field is written twice: "5"" screen")'
    )


def not_utf8(path: Path) -> str:
    """Which line is not UTF-8 (found by reading the bytes again, only on this error path)."""
    with path.open("rb") as handle:
        magic = handle.read(4)
        handle.seek(0)
        found = {b"PK\x03\x04": ("an .npz (zip)", "npz"), b"PAR1": ("a Parquet", "parquet")}
        if magic in found:  # was "save the file as UTF-8" for `format: csv` on an .npz
            kind, name = found[magic]
            return (
                f"{path.name} is {kind} file, not CSV text: set spec field 'dataset.format' to "
                f"{name}, or leave it out (auto)"
            )
        if magic[:2] == GZIP_MAGIC:  # was "line 1 is not UTF-8 text (byte 0x8b)"
            return gzipped(path)
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                byte = line[exc.start : exc.start + 1].hex()
                return (
                    f"{path.name} line {number} is not UTF-8 text (byte 0x{byte}); "
                    "save the file as UTF-8 (CSV UTF-8 in Excel)"
                )
    return f"{path.name} is not UTF-8 text; save the file as UTF-8 (CSV UTF-8 in Excel)"


GZIP_MAGIC = b"\x1f\x8b"


def gzipped(path: Path) -> str:
    """A gzip file given for CSV text (`aiaas batch` reads `rows.csv.gz`; training, and the
    CLI's readers, read the file as it is)."""
    return (
        f"{path.name} is gzip-compressed, not CSV text: decompress it first (gunzip -k {path.name})"
    )


def looks_like_data(header: Sequence[str]) -> bool:
    """A header line of numbers only: the file has none, and its first row was read as the
    column names (training, and `aiaas publish --data`, say so)."""
    return bool(header) and all(_is_number(name) for name in header)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
