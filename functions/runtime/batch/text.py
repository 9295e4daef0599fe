"""Line-based inputs, CSV and JSONL: lines in, decoded chunks out, scored lines back.

Every JSONL line is one row; a CSV row is a record, which spans lines where a quoted field holds
line breaks (`csv_records`), and is numbered by the line it starts on. A line ends in LF or
CRLF: the CRs that end it go, any other CR is the line's own (inside a quoted CSV field it is
text, as the csv module reads it; outside quotes it makes the row a bad one). Blank lines are skipped
but counted, so error line numbers match what an editor shows. A line that cannot be decoded
becomes a RowError with its number and reason; the other lines of its chunk are still scored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from functions.runtime.batch.scoring import Chunk, RowError, coerce_rows
from functions.runtime.batch.source import TOO_LONG
from functions.runtime.manifest import ModelManifest


def cut_line_ends(lines: list[bytes]) -> list[bytes]:
    """CRLF lines without the CRs that end them, as decode_lines cuts them; only those. A CR
    inside a line is its own (text in a quoted field; a bad row outside quotes): deleting it
    had scored `"line one\rline two"` as "line oneline two" and `1,2\r3,4` as 1,23,4."""
    if lines[0].endswith(b"\r") or lines[-1].endswith(b"\r"):
        return [line.rstrip(b"\r") for line in lines]  # as fast as deleting every CR was
    return lines


def decode_lines(
    first: int, lines: list[bytes]
) -> tuple[str | None, list[str], np.ndarray, list[RowError]]:
    """(joined text when no line was dropped, row texts, row line numbers, undecodable lines)."""
    return decode_numbered(np.arange(first, first + len(lines), dtype=np.int64), lines)


def decode_numbered(
    numbers: np.ndarray, lines: list[bytes]
) -> tuple[str | None, list[str], np.ndarray, list[RowError]]:
    """`decode_lines` for lines numbered `numbers` (not necessarily consecutive)."""
    try:
        text = b"\n".join(lines).decode("utf-8")
    except UnicodeDecodeError:
        return _decode_each(numbers, lines)
    if "\r" in text:  # CRLF: the CRs that end lines go (as in csv), never one inside a line
        text = text.replace("\r\n", "\n")
        if "\r\n" in text:  # a line that ended in CR CR: rare, and linear here
            text = "\n".join(row.rstrip("\r") for row in text.split("\n"))
        text = text.rstrip("\r")
    rows = text.split("\n")
    if len(rows) != len(lines):  # a CSV record holds a line break in a quoted field
        return _decode_each(numbers, lines)
    if "" in rows or any(map(str.isspace, rows)):
        keep = [i for i, row in enumerate(rows) if row and not row.isspace()]
        return None, [rows[i] for i in keep], numbers[keep], []
    return text, rows, numbers, []


def _decode_each(
    numbers: np.ndarray, lines: list[bytes]
) -> tuple[None, list[str], np.ndarray, list[RowError]]:
    rows, keep, errors = [], [], []
    for index, line in enumerate(lines):
        if line.startswith(TOO_LONG):
            limit = line[len(TOO_LONG) :].split()[0].decode()
            errors.append(
                RowError(
                    int(numbers[index]),
                    f"longer than {limit} bytes (AIAAS_BATCH_MAX_LINE_BYTES): not read",
                )
            )
            continue
        try:
            row = line.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError as exc:
            errors.append(RowError(int(numbers[index]), f"not valid UTF-8 (byte {exc.start + 1})"))
            continue
        if row and not row.isspace():
            rows.append(row)
            keep.append(index)
    return None, rows, numbers[keep], errors


Line = TypeVar("Line", str, bytes)


def finish_chunk(
    manifest: ModelManifest,
    lines: int,
    records: list[Line],
    numbers: np.ndarray,
    raw: dict[str, np.ndarray],
    parsed: np.ndarray,
    errors: list[RowError],
    written: Callable[[Line], dict[str, list[str]]] | None = None,
) -> Chunk:
    """Coerce the parsed rows and assemble the chunk; `parsed` marks records that parsed, and
    `written` gives a record's cells as written (CSV), for a refused row's reason to quote."""
    parsed_numbers = numbers[parsed]
    cells = None
    if written is not None:
        where = np.flatnonzero(parsed)

        def cells(index: int) -> dict[str, list[str]]:
            return written(records[int(where[index])])

    features, good, cast_errors = coerce_rows(manifest, raw, parsed_numbers, cells)
    mask = parsed.copy()
    mask[np.flatnonzero(parsed)[~good]] = False
    kept: list[Line] = (
        records if mask.all() else [r for r, ok in zip(records, mask.tolist(), strict=True) if ok]
    )
    return Chunk(
        lines=lines,
        features=features,
        good=mask,
        records=kept,
        errors=sorted(errors + cast_errors, key=lambda e: e.position),
        positions=parsed_numbers[good],
    )
