"""CSV readers that take long fields: one long text in a column is data, not an error.

Python's csv module refuses any field over 128 KiB (`field larger than field limit (131072)`):
one long review or document in a text column stopped `aiaas train` with a traceback and made
its batch row fail, while the served model reads the same text (and its tokenizer keeps the
first `max_length` tokens). The limit belongs to the module, process-wide, not to a reader, so
`reader` and `dict_reader` raise it once, where the readers of users' files are made
(training's CSV data sets, batch CSV records and headers, the CLI's and compare's readers), and
nowhere else.

No field is held past a bound already enforced: a batch record is read whole only up to
AIAAS_BATCH_MAX_LINE_BYTES (a longer one is a bad row before any reader sees it), and a training
data set is read whole into memory anyway.
"""

from __future__ import annotations

import contextlib
import csv
import math
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _csv import Reader

    _DictReader = csv.DictReader[str]
else:
    _DictReader = csv.DictReader

# The most csv.field_size_limit takes is a C long: 2**63 - 1 on Linux and macOS, 2**31 - 1 on
# Windows; 2 GiB is larger than any record batch reads or file training would load.
FIELD_LIMIT = min(sys.maxsize, 2**31 - 1)


def reader(lines: Iterable[str], *, strict: bool = False) -> Reader:
    """`csv.reader(lines)` (the default dialect) with fields of up to FIELD_LIMIT characters."""
    _long_fields()
    return csv.reader(lines, strict=strict)


def dict_reader(lines: Iterable[str]) -> RecordReader:
    """`csv.DictReader(lines)` with fields of up to FIELD_LIMIT characters (the CLI's readers
    of users' files: `explain --file`, `baseline`, publish's evaluation data, compare's truth),
    that also says when a record's fields are not the header's (`RecordReader.misshapen`)."""
    _long_fields()
    return RecordReader(lines)


def wrong_fields(record: Sequence[str], header: Sequence[str]) -> str | None:
    """The rule every reader of a CSV applies to a record, in batch's words: as many fields as
    the header, or the record is refused. A thousands separator (`1,000`) or a stray comma
    makes one more; DictReader put it under the key None and read the row shifted. A comma
    that ends every row (or the header) is said so: the counts alone named no cause."""
    fields, names = len(record), len(header)
    if fields == names:
        return None
    said = f"has {fields} fields; the header has {names}"
    if fields == names + 1 and not record[-1].strip():
        return said + ROW_COMMA
    if fields + 1 == names and not header[-1].strip():
        return said + HEADER_COMMA
    return said


ROW_COMMA = (
    " (the row ends in a comma, which makes an empty last field: remove the commas that end "
    "the rows, or name that column in the header)"
)
HEADER_COMMA = (
    " (the header ends in a comma, which names an empty last column: remove that comma, or "
    "end each row in a comma too)"
)


class _Counted:
    """A csv reader that keeps its last record."""

    def __init__(self, inner: Reader) -> None:
        self.inner = inner
        self.record: list[str] = []
        self.header: list[str] | None = None  # the header's names, once read

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> list[str]:
        record = next(self.inner)
        # A line of blanks under a header of several columns is no record (batch skips it); it
        # was one of 1 field, which refused a whole baseline.
        while self.header is not None and len(self.header) > 1 and _blank(record):
            record = next(self.inner)
        self.record = record
        return record

    @property
    def line_num(self) -> int:
        return self.inner.line_num

    @property
    def dialect(self) -> Any:
        return self.inner.dialect


class RecordReader(_DictReader):
    """A DictReader that reads a header as `aiaas batch` does (the blanks around a name are
    no part of it; `named_twice` refuses a name read twice) and skips a line of blanks as batch
    skips it, and whose `misshapen()` names a record of more or fewer fields than the header
    (its cells beyond the header were under the key None, ignored; missing ones None).
    DictReader kept the last cell of a name the header repeats: a baseline, a card and the
    explanations were made of the wrong column where batch refused the file."""

    def __init__(self, lines: Iterable[str]) -> None:
        super().__init__(lines)
        self._counted = _Counted(self.reader)
        self.reader = self._counted  # type: ignore[assignment]

    @property
    def fieldnames(self) -> Sequence[str] | None:  # DictReader's, the names stripped
        if self._counted.header is None:
            with contextlib.suppress(StopIteration):  # an empty file: no header
                self._counted.header = [name.strip() for name in next(self._counted)]
        self.line_num = self._counted.line_num
        return self._counted.header

    @fieldnames.setter
    def fieldnames(self, value: Sequence[str] | None) -> None:
        self._counted.header = None if value is None else list(value)

    def misshapen(self) -> str | None:
        """`wrong_fields` of the record read last, None when it has the header's fields."""
        return wrong_fields(self._counted.record, list(self.fieldnames or ()))


def named_twice(where: str, header: Iterable[str], read: Iterable[str]) -> str | None:
    """Batch's refusal of a header naming a column it reads twice (which cell is the value?),
    None when each is named once; other names may repeat (an export's two `id` columns)."""
    wanted = set(read)
    repeated = Counter(header)
    twice = sorted(name or "''" for name in wanted if repeated[name] > 1)
    return f"{where}: the header names columns twice: {', '.join(twice)}" if twice else None


def row_of_data(header: Sequence[str]) -> bool:
    """A first line half or more of whose cells are numbers may be a row of data, not a header:
    a table with a text column (`40,50000,pro`) has no line of numbers alone to tell it by."""
    numbers = sum(is_number(cell) for cell in header)
    return numbers > 0 and 2 * numbers >= len(header)


def missing_header_question(header: Sequence[str]) -> str:
    """What an error about a header's missing columns adds when its first line may be data. A
    real header can hold numbers too (`station,2019,2020,2021`): where not every cell is one,
    the question says how many are, for the reader to judge."""
    if not row_of_data(header):
        return ""
    numbers = sum(is_number(cell) for cell in header)
    if numbers == len(header):
        return " (is the header line missing?)"
    return f" (is the header line missing? {numbers} of its {len(header)} cells are numbers)"


def is_number(text: str) -> bool:
    """A finite number as written in a cell (a column named `nan` or `inf` is a name)."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _blank(record: list[str]) -> bool:
    return len(record) == 1 and record[0].isspace()


def _long_fields() -> None:
    if csv.field_size_limit() < FIELD_LIMIT:
        csv.field_size_limit(FIELD_LIMIT)
