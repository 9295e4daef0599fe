"""Cells of a table read as numbers: missing-value markers, text, and how a row is named.

Shared by `training.datasets` (features) and `training.targets` (a regression target), so both
say the same about a gap, a word or a decimal comma, naming the row as the user finds it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from functions.runtime.codecs.nulls import MISSING_MARKERS
from training.errors import DataError


@dataclass(frozen=True)
class RowPlaces:
    """How messages name a data row: its line in a CSV file, else its index from 0 (with the
    file's name where there is a file: a Parquet table)."""

    file: str = ""
    lines: np.ndarray | None = None  # the file line each CSV record starts on

    def __call__(self, row: int) -> str:
        if self.lines is not None:
            return f"line {int(self.lines[row])} of {self.file}"
        return f"row {row} of {self.file}" if self.file else f"row {row}"


ROW_INDEX = RowPlaces()


# A number with a comma: a decimal comma (`1,5`) or thousands separators (`1,234.5`).
_COMMA_NUMBER = re.compile(r"[-+]?\d[\d,]*,\d+(\.\d+)?")
# A number with a unit after it (`12kg`, `3.5 GB`, `70 m2`).
UNIT_NUMBER = re.compile(r"\s*[-+]?(\d+([.,]\d*)?|\.\d+)\s*[^\W\d_]{1,4}\d?\.?\s*", re.UNICODE)
# A date, with a time or not (`2024-01-31`, `31/01/2024`, `2024-01-31 10:30:00`).
DATE_TEXT = re.compile(r"\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})([ T].*)?")


def is_missing(cell: object) -> bool:
    """An empty cell, a marker such as `NA`, None or NaN."""
    if isinstance(cell, float):
        return math.isnan(cell)
    return cell is None or str(cell).strip().lower() in MISSING_MARKERS


def decimal_comma(cell: object) -> bool:
    """A number written with a comma (`1,5`, `1,234.5`), as Excel saves numbers in many locales."""
    return isinstance(cell, str) and _COMMA_NUMBER.fullmatch(cell.strip()) is not None


def numeric_column(
    values: np.ndarray,
    name: str,
    *,
    role: str = "column",
    fix: str = "",
    gaps: str = "",
    places: RowPlaces = ROW_INDEX,
    max_missing: float = 0.0,
) -> np.ndarray:
    """Column values as float64; a missing, infinite or non-numeric cell is a DataError naming
    its row.

    `role` names the column in messages ("feature column"); `fix` ends a non-numeric or an
    all-empty one, `gaps` one with missing cells; `places` names the row (a CSV's line). With
    `max_missing`, missing cells under that share of the rows are NaN in the result.
    """
    out = _floats(values)
    missing = np.zeros(len(values), dtype=bool)
    if out is None or np.isnan(out).any():
        missing = np.array([is_missing(v) for v in values], dtype=bool)
        if missing.all():
            raise DataError(f"{role} {name!r} is empty in every row ({len(values)} rows){fix}")
        count = int(missing.sum())
        if count and count >= max_missing * len(values):
            row = int(missing.argmax())
            first = str(values[row])
            shown = repr(first) if first.strip() else "an empty cell"
            share = f" ({count / len(values):.0%})" if max_missing else ""
            raise DataError(
                f"{role} {name!r} has {count} missing value{'s' * (count > 1)} in "
                f"{len(values)} rows{share}, the first ({shown}) at {places(row)}{gaps}"
            )
        if count:
            out = _floats(np.where(missing, "nan", values))
    if out is None:
        # the first word: missing cells were filled above (or refused), a marker is no word
        row, cell = first_text(values) or (0, None)
        text = str(cell)[:40]
        if decimal_comma(text):  # Excel in many locales: numbers need a point here
            fix = "; write numbers with no thousands separator and a point for decimals (1.5)"
        elif UNIT_NUMBER.fullmatch(text):  # `12kg` in a column of numbers: a unit to drop
            fix = "; write the number alone in every cell (the unit belongs in the header)"
        elif not any(c.isalnum() for c in text):  # `-`, `?`, `.`: a missing value, written so
            filled = " (training fills a gap with the column's median)" if max_missing else ""
            fix = f"; if it marks a missing value, leave the cell empty or write NA{filled}{fix}"
        raise DataError(f"{role} {name!r} has a non-numeric value {text!r} at {places(row)}{fix}")
    check_finite(np.where(missing, 0.0, out), name, role, places)
    return out


def _floats(values: np.ndarray) -> np.ndarray | None:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    try:
        for row, cell in enumerate(values):
            out[row] = as_number(cell)
    except (TypeError, ValueError):
        return None
    return out


def as_number(cell: object) -> float:
    """float(cell), less Python's own `1_000`: no CSV writer's number, and serving refused it."""
    if isinstance(cell, str) and "_" in cell:
        raise ValueError(f"not a number: {cell!r}")
    return float(cell)  # type: ignore[arg-type]


def first_non_number(values: np.ndarray, *, missing: bool = True) -> tuple[int, object] | None:
    """The first (row, cell) that is not a number, or None; missing-value markers (empty cells
    included) count unless `missing` is False."""
    if values.dtype.kind in "biuf":
        return None
    for row, cell in enumerate(values):
        try:
            as_number(cell)
        except (TypeError, ValueError):
            if missing or not is_missing(cell):
                return row, cell
    return None


def check_finite(values: np.ndarray, name: str, where: str, places: RowPlaces = ROW_INDEX) -> None:
    """Refuse an infinity (a gap, NaN, is the caller's to fill or refuse first), and a number
    float32, the model's number type, cannot hold."""
    bad = ~np.isfinite(values)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{where} {name!r} has {'an infinite value' if np.isinf(values[at]) else 'a NaN'} "
            f"({values[at]}) at {places(at[0])}; replace it with a finite number"
        )
    check_float32(values, name, where, places)


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_float32(values: np.ndarray, name: str, where: str, places: RowPlaces = ROW_INDEX) -> None:
    """Refuse a finite number beyond float32's range: it became inf in training (a NaN loss
    whose advice, a lower learning rate, could not help) and in every served request."""
    if values.dtype.kind != "f" or values.dtype.itemsize <= 4:
        return
    with np.errstate(invalid="ignore"):  # NaN and inf: the gaps' and check_finite's
        big = np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)
    if big.any():
        at = tuple(int(i) for i in np.argwhere(big)[0])
        raise DataError(
            f"{where} {name!r} holds {values[at]:g} at {places(at[0])}, beyond float32 (the "
            f"model's numbers, up to {FLOAT32_MAX:.3g}); rescale it (other units)"
        )


def first_text(values: np.ndarray) -> tuple[int, object] | None:
    """The first (row, cell) that is neither a number nor a missing-value marker, or None."""
    return first_non_number(values, missing=False)
