"""CSV batch input: a header line naming the model's input columns, then one row per record (a
record spans lines where a quoted field holds line breaks: `csv_records`).
The header itself is matched in `csv_header`.
"""

from __future__ import annotations

import csv
import io
import math
from functools import partial
from itertools import repeat
from operator import itemgetter
from typing import cast

import numpy as np

from functions.runtime import csv_fields
from functions.runtime.batch.cells import csv_cells, join_rows
from functions.runtime.batch.csv_header import CsvLayout
from functions.runtime.batch.numbers import NUMBER_BYTES, plain_numbers
from functions.runtime.batch.scoring import Chunk, OutputField, RowError, row_shape
from functions.runtime.batch.text import cut_line_ends, decode_numbered, finish_chunk
from functions.runtime.codecs import nulls
from functions.runtime.input_messages import captured_gap, missing_value
from functions.runtime.manifest import ModelManifest

COMMA, NEWLINE = ord(","), ord("\n")
# A bool input's cells as pandas' to_csv writes them (True/False), or lower-cased; 1/0 as numbers.
BOOL_CELLS = {"true": 1.0, "false": 0.0}
MOSTLY_ODD = 4  # more than a quarter of a chunk's lines odd: the careful path for all of it

UNPAIRED_QUOTES = (
    "not a valid CSV row: its quotes do not pair up (a quoted field opens here and does not "
    "close before the end of the file or within AIAAS_BATCH_MAX_LINE_BYTES; a quote inside a "
    'field is written twice: "5"" screen")'
)

CR_OUTSIDE_QUOTES = (  # the only line break a row can hold
    "a carriage return (CR) outside quotes (lines end in LF or CRLF; a CR "
    "that is part of a value is written inside a quoted field)"
)


def _after_header(first: int, starts: np.ndarray | None) -> tuple[int, np.ndarray | None]:
    """The first record's line and record starts once the header record is dropped: a header
    over two lines leaves records one line each from line 3 (the fast paths), as
    `csv_records._batch` numbers them."""
    if starts is None:
        return first + 1, None
    starts = starts[1:]
    if not len(starts):
        return first + 1, starts
    one_line_each = int(starts[-1]) - int(starts[0]) == len(starts) - 1
    return int(starts[0]), None if one_line_each else starts


def _odd_quotes(record: str) -> bool:
    return record.count('"') % 2 == 1


def _unpaired_quotes(record: str) -> bool:
    """An odd number of quote characters that the csv module does not read as one row: a
    quoted field that never closed (the reader hands its first line on alone), or a quote that
    is not doubled. A quote inside an unquoted field (`5" screen`) is a character to it, as to
    pandas: such a row was refused when its count was odd (batch hunt)."""
    if not _odd_quotes(record):
        return False
    try:
        next(csv_fields.reader([record], strict=True), None)
    except csv.Error:
        return True
    return False


class CsvDecoder:
    """Turns batches of CSV lines into chunks: plain numbers through simdjson, then numpy's
    parser, then Python's line by line to find the bad rows. All three give the same values."""

    def __init__(self, layout: CsvLayout, manifest: ModelManifest, *, skip_header: bool) -> None:
        self.layout = layout
        self.manifest = manifest
        self.specs = {spec.name: spec for spec in manifest.inputs}
        self.skip_header = skip_header
        self.captured = {"time", "request_id", "version"} <= set(layout.columns)  # capture export
        self.width = len(layout.usecols) if layout.usecols is not None else len(layout.columns)
        self.picks = {name: _pick(cols) for name, cols in layout.indices.items()}
        # A refused row's reason quotes its cells as written (9007199254740993, not ...992).
        self.finish = partial(finish_chunk, manifest, written=layout.written)

    def chunk(
        self, first: int, lines: list[bytes], starts: np.ndarray | None = None, count: int = 0
    ) -> Chunk:
        """One batch of records (`first` is the number of its first line) as a chunk; `starts`
        numbers each record where some span lines, and `count` is then the lines they cover."""
        count = count or len(lines)
        if self.skip_header:  # the object's first record is the header (it may span lines)
            self.skip_header, lines = False, lines[1:]
            first, starts = _after_header(first, starts)
        if starts is not None:  # line breaks in quoted fields: each record read carefully
            return self._decoded_chunk(count, starts, lines, numpy=False)
        plain = self._plain_chunk(count, first, lines)
        if plain is not None:
            return plain
        mixed = self._mixed_chunk(count, first, lines)
        if mixed is not None:
            return mixed
        return self._decoded_chunk(count, _numbered(first, lines), lines, numpy=True)

    def per_row_chunk(self, first: int, lines: list[bytes]) -> Chunk:
        """`lines` (no header) parsed line by line by csv and float(): the careful path, which
        the faster ones must match (the tests hold them to it)."""
        return self._decoded_chunk(len(lines), _numbered(first, lines), lines, numpy=False)

    def _decoded_chunk(
        self, count: int, numbers: np.ndarray, lines: list[bytes], *, numpy: bool
    ) -> Chunk:
        text, records, numbers, errors = decode_numbered(numbers, lines)
        matrix = self._parse_fast(text, records) if numpy else None
        if matrix is not None:
            raw = self._split(matrix)
            parsed = np.ones(len(records), dtype=bool)
        else:
            raw, parsed, bad = self._parse_slow(records, numbers)
            errors += bad
        echoed = [record.encode() for record in records]
        return self.finish(count, echoed, numbers, raw, parsed, errors)

    def _plain_chunk(self, count: int, first: int, lines: list[bytes]) -> Chunk | None:
        """The chunk when every line is plain numbers (the common case), else None.

        Stays in bytes: the lines are echoed as read, so they are never decoded or split again.
        """
        if not lines or not self.layout.numeric:
            return None
        lines = cut_line_ends(lines)
        matrix = plain_numbers(lines, len(self.layout.columns))  # a CR left: not plain numbers
        if matrix is None:
            return None
        if self.layout.usecols is not None:
            matrix = matrix[:, self.layout.usecols]
        numbers = np.arange(first, first + len(lines), dtype=np.int64)
        parsed = np.ones(len(lines), dtype=bool)
        return self.finish(count, lines, numbers, self._split(matrix), parsed, [])

    def _mixed_chunk(self, count: int, first: int, lines: list[bytes]) -> Chunk | None:
        """A chunk with a few odd lines: the others read as plain numbers, the odd ones
        carefully, so a bad row does not send 4,000 good ones down the slow path."""
        if not lines or not self.layout.numeric:
            return None
        lines = cut_line_ends(lines)  # a line with a CR left is odd: read carefully
        cells, odd = self._model_cells(lines)
        odd.update(self._odd_lines(cells, self.width))
        if len(odd) > len(lines) // MOSTLY_ODD:
            return None
        plain = [i for i in range(len(lines)) if i not in odd]
        matrix = plain_numbers([cells[i] for i in plain], self.width)
        if matrix is None:  # plain-looking fields that are not JSON numbers (+1, .5, 1e400)
            return None
        numbers = np.arange(first, first + len(lines), dtype=np.int64)
        strange = sorted(odd)
        _, texts, odd_numbers, errors = decode_numbered(
            numbers[strange], [lines[i] for i in strange]
        )
        odd_raw, odd_parsed, bad = self._parse_slow(texts, odd_numbers)
        # Every row in line order: the plain ones, then the odd ones that are not blank.
        order = np.argsort(np.concatenate([numbers[plain], odd_numbers]), kind="stable")
        records = [lines[i] for i in plain] + [text.encode() for text in texts]
        parsed_rows = np.concatenate([np.ones(len(plain), dtype=bool), odd_parsed])
        # Values exist for parsed rows only, plain ones first: where each parsed row's are.
        slot = (np.cumsum(parsed_rows) - 1)[order[parsed_rows[order]]]
        raw = {
            name: np.concatenate([values, odd_raw[name]])[slot]
            for name, values in self._split(matrix).items()
        }
        return self.finish(
            count,
            [records[i] for i in order.tolist()],
            np.concatenate([numbers[plain], odd_numbers])[order],
            raw,
            parsed_rows[order],
            errors + bad,
        )

    def _model_cells(self, lines: list[bytes]) -> tuple[list[bytes], set[int]]:
        """Each line's cells of the model's columns, joined by commas, and the lines odd
        whatever those hold: another field count, or what makes the careful path refuse a
        row in any column (a quote, a CR, a NUL, bytes that are not UTF-8). Oddness is then
        judged on the model's cells only: a text column (ids, dates, notes) left every line
        odd and one bad cell sent the whole chunk down the careful path (2.7x slower)."""
        usecols = self.layout.usecols
        if usecols is None:
            return lines, set()
        fields, pick = len(self.layout.columns), itemgetter(*usecols)
        whole = b"\n".join(lines)
        odd: set[int] = set()
        try:
            whole.decode("utf-8")
        except UnicodeDecodeError:
            odd = {i for i, line in enumerate(lines) if not _utf8(line)}
        if b'"' in whole or b"\r" in whole or b"\0" in whole:
            odd |= {i for i, line in enumerate(lines) if not _bare(line)}
        cells = []
        for index, line in enumerate(lines):
            split = line.split(b",")
            if len(split) != fields:
                odd.add(index)
                cells.append(b"")
            elif len(usecols) > 1:  # an empty cell among several: found by _odd_lines
                cells.append(b",".join(pick(split)))
            else:
                cells.append(cell := split[usecols[0]])
                if not cell.strip():  # an empty cell, alone: no comma shows it
                    odd.add(index)
        return cells, odd

    @staticmethod
    def _odd_lines(lines: list[bytes], width: int) -> set[int]:
        """Lines that cannot be `width` plain numbers: other characters, another field count
        or an empty field. (What passes may still not be JSON numbers: plain_numbers decides.)"""
        commas = b"," * (width - 1)
        # What is left of a plain line once its numbers go is exactly its commas.
        rests = map(bytes.translate, lines, repeat(None), repeat(NUMBER_BYTES))
        odd = {i for i, rest in enumerate(rests) if rest != commas}
        # Empty fields leave the commas right. A comma that starts a line or follows a comma,
        # or ends a line, is one: found with numpy (searching bytes for ",," is slow).
        text = np.frombuffer(b"\n".join(lines), dtype=np.uint8)
        comma, newline = text == COMMA, text == NEWLINE
        after = np.ones_like(comma)  # a line break or a comma just before
        after[1:] = comma[:-1] | newline[:-1]
        before = np.ones_like(comma)  # a line break just after
        before[:-1] = newline[1:]
        empty = np.flatnonzero(comma & (after | before))
        if len(empty):
            starts = np.cumsum([0, *map(len, lines)]) + np.arange(len(lines) + 1)
            odd.update((np.searchsorted(starts, empty, side="right") - 1).tolist())
        return odd

    def _split(self, matrix: np.ndarray) -> dict[str, np.ndarray]:
        """Input name -> its columns of the parsed matrix, in the input's per-row shape."""
        return {name: self._shape(name, matrix[:, pick]) for name, pick in self.picks.items()}

    def _shape(self, name: str, values: np.ndarray) -> np.ndarray:
        return values.reshape((len(values), *row_shape(self.manifest, self.specs[name])))

    def _parse_fast(self, text: str | None, records: list[str]) -> np.ndarray | None:
        if not records or not self.layout.numeric:
            return None
        if self.layout.usecols is not None:
            # numpy ignores columns it is not asked for: check every row's field count here.
            commas = len(self.layout.columns) - 1
            if any(row.count(",") != commas for row in records):
                return None
        source = text if text is not None else "\n".join(records)
        if '"' in source and any(map(_odd_quotes, records)):
            return None  # numpy reads quotes as text: the careful path names these rows
        try:
            matrix = np.loadtxt(
                io.StringIO(source),
                delimiter=",",
                dtype=np.float64,
                comments=None,
                ndmin=2,
                usecols=self.layout.usecols,
            )
        except ValueError:
            return None
        return matrix if matrix.shape == (len(records), self.width) else None

    def _parse_slow(
        self, records: list[str], numbers: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, list[RowError]]:
        values: dict[str, list[list[object]]] = {name: [] for name in self.layout.indices}
        parsed = np.zeros(len(records), dtype=bool)
        errors = []
        columns = self.layout.usecols or range(len(self.layout.columns))
        for index, record in enumerate(records):
            if _unpaired_quotes(record):
                errors.append(RowError(int(numbers[index]), UNPAIRED_QUOTES))
                continue
            try:
                fields = next(csv_fields.reader([record], strict=True), [])
            except csv.Error as exc:  # an unclosed quote, a stray NUL or CR
                # a line feed outside quotes never reaches here (csv_records.py splits there)
                reason = (
                    CR_OUTSIDE_QUOTES if "new-line" in str(exc) and "\r" in record else str(exc)
                )
                errors.append(RowError(int(numbers[index]), f"not a valid CSV row: {reason}"))
                continue
            misfit = csv_fields.wrong_fields(fields, self.layout.columns)
            if misfit is not None:
                errors.append(RowError(int(numbers[index]), misfit))
                continue
            picked = [fields[c] for c in columns]
            try:
                row = {
                    n: [self._value(n, picked[c], c) for c in cols]
                    for n, cols in self.layout.indices.items()
                }
            except ValueError as exc:
                errors.append(RowError(int(numbers[index]), str(exc)))
                continue
            parsed[index] = True
            for name, items in row.items():
                values[name].append(items)
        raw = {name: self._shape(name, self._array(name, rows)) for name, rows in values.items()}
        return raw, parsed, errors

    def _array(self, name: str, rows: list[list[object]]) -> np.ndarray:
        string = self.specs[name].dtype == "string"
        width = len(self.layout.indices[name])
        return np.array(rows, dtype=object if string else np.float64).reshape(len(rows), width)

    def _value(self, name: str, text: str, slot: int) -> object:
        if self.specs[name].dtype == "string":
            return nulls.cell_text(self.specs[name], text)  # "", NaN, NA: scikit-learn's "nan"
        stripped = text.strip()
        spec = self.specs[name]
        # `NA` too is a gap to a model that takes them, as training read it in its own file.
        if spec.dtype.startswith("float") and (
            not stripped or (nulls.takes_missing(spec) and nulls.missing_marker(stripped))
        ):
            return self._empty(name, slot)
        if spec.dtype == "bool" and stripped.lower() in BOOL_CELLS:  # pandas' True / False
            return BOOL_CELLS[stripped.lower()]
        if not stripped or "_" in stripped:  # float() accepts 1_000; numpy's parser does not
            raise ValueError(f"column '{self._column(slot)}' is empty or not a number: {text!r}")
        try:
            return float(stripped)
        except ValueError:
            said = (
                f" (input '{name}' is bool: write true/false or 1/0)"
                if spec.dtype == "bool"
                else ""
            )
            raise ValueError(
                f"column '{self._column(slot)}' is not a number: {text[:40]!r}"
                + (said or _comma_hint(stripped))
            ) from None

    def _empty(self, name: str, slot: int) -> float:
        """An empty cell is a missing value (pandas' to_csv writes NaN so, R writes NA: one of
        the markers training reads as gaps): NaN for a model that takes them, else the row's
        error saying how such a model is published."""
        if nulls.takes_missing(self.specs[name]):
            return math.nan
        where = f"column '{self._column(slot)}'"
        raise ValueError((captured_gap if self.captured else missing_value)(where, "an empty cell"))

    def _column(self, slot: int) -> str:
        columns = self.layout.usecols or range(len(self.layout.columns))
        return self.layout.columns[columns[slot]]


def _utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bare(line: bytes) -> bool:
    """No quote, CR or NUL: a line whose fields its commas alone delimit."""
    return b'"' not in line and b"\r" not in line and b"\0" not in line


def _numbered(first: int, lines: list[bytes]) -> np.ndarray:
    return np.arange(first, first + len(lines), dtype=np.int64)


def _pick(columns: list[int]) -> slice | list[int]:
    """Columns as a slice when they are consecutive: numpy then views instead of copying."""
    if columns == list(range(columns[0], columns[0] + len(columns))):
        return slice(columns[0], columns[0] + len(columns))
    return columns


def csv_body(chunk: Chunk, outputs: dict[str, np.ndarray], fields: list[OutputField]) -> bytes:
    """The scored rows of `chunk`: each input line with its prediction columns appended."""
    cells = [csv_cells(field, outputs[field.name]) for field in fields]
    return join_rows(cast(list[bytes], chunk.records), cells)


def _comma_hint(text: str) -> str:
    """A number written with a decimal comma (a comma-decimal locale's Excel: '5,1') or a
    thousands separator ('1,000.5'), quoted in a comma-separated file."""
    point = text.replace(",", ".", 1) if text.count(",") == 1 else text.replace(",", "")
    try:
        float(point)
    except ValueError:
        return ""
    if "," not in text or "_" in text:
        return ""
    return f" (write decimals with a point, {point}, and no thousands separator)"
