"""A file row's cells as model values (numbers, strings), and training rows with gaps for
`aiaas baseline`: which empty cells are missing values, and the rows an explanation background
is summarized from.

A model that takes missing values (a float input published with --allow-nonfinite, or trained
by `aiaas train` on a table with gaps) reads an empty CSV cell as NaN, as `aiaas batch` does;
its drift baseline counts them per feature (functions/runtime/drift/baseline.py). A model whose
inputs must be finite keeps refusing them, naming the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from functions.runtime.codecs.nulls import cell_text, missing_marker, takes_missing
from functions.runtime.errors import BadRequest
from functions.runtime.input_columns import InputColumns
from functions.runtime.input_messages import captured_gap, missing_value
from functions.runtime.manifest import TensorSpec


def gap_columns(columns: InputColumns) -> frozenset[int]:
    """The flat columns whose empty cell is a missing value (NaN) to this model."""
    gaps: set[int] = set()
    start = 0
    for spec, width in zip(columns.specs, columns.widths, strict=True):
        if takes_missing(spec):
            gaps.update(range(start, start + width))
        start += width
    return frozenset(gaps)


BOOL_TEXT = {"true": "1", "false": "0"}  # a bool input's cells, as `aiaas batch` reads them


def bool_columns(columns: InputColumns) -> list[int]:
    """The flat columns of bool inputs (whose cells may be true/false)."""
    return [c for spec, start, width in columns.blocks() if spec.dtype == "bool"
            for c in range(start, start + width)]  # fmt: skip


def integer_columns(columns: InputColumns) -> frozenset[int]:
    """The flat columns of integer inputs, whose cells `row_values` reads as whole numbers: a
    float64 holds them exactly only up to 2^53 (an int64 id, a 64-bit hash)."""
    return frozenset(
        c
        for spec, start, width in columns.blocks()
        if spec.dtype.startswith(("int", "uint"))
        for c in range(start, start + width)
    )


def whole(
    cell: str, column: int, gaps: frozenset[int] | None, name: str, captured: bool = False
) -> int | float:
    """An integer column's cell: a whole number as written (1234567890123456789, which
    float() rounds to ...768), else read as `number` reads it ("3.0", "1e3", an empty cell)."""
    try:
        return int(cell)
    except ValueError:
        return number(cell, column, gaps, name, captured) if gaps is not None else float(cell)


def number(
    cell: str, column: int, gaps: frozenset[int] | None, name: str, captured: bool = False
) -> float:
    """A numeric cell as a float; with `gaps` (training rows, rows to explain), an empty cell
    or a marker such as `NA` is NaN in those columns and a missing value the model refuses
    elsewhere (a ValueError). `captured`: the file is a capture export, whose empty cell is a
    field denied at capture (`captured_gap`), as `aiaas batch` says it: `--allow-nonfinite`
    was the advice."""
    if gaps is not None and column in gaps and missing_marker(cell):  # `NA` as batch reads it
        return float("nan")
    if gaps is not None and not cell.strip():
        raise ValueError(
            (captured_gap if captured else missing_value)(f"column '{name}'", "an empty cell")
        )
    try:
        return float(cell)
    except ValueError:  # named as batch's error records name it, not Python's words
        raise ValueError(f"column '{name}' is not a number: {cell!r:.40}") from None


def background_rows(rows: np.ndarray, strings: Sequence[int]) -> tuple[np.ndarray, str]:
    """The rows the explanation background is summarized from (its k-means centres and Kernel
    SHAP's reference values must be numbers; the drift baseline counts the gaps instead), and
    what was done with the rows holding a missing number: "" for none. Where most rows are
    complete, those with a gap are left out; where most hold one (a wide table: 30 columns a
    tenth missing leave 9 rows of 285 complete, or none), every row is kept with each gap filled
    with its column's median over the rows that hold it (as `aiaas train` fills its own
    background's): leaving them out refused the whole baseline, or explained against a handful
    of rows."""
    numeric = [c for c in range(rows.shape[1]) if c not in set(strings)]
    if not numeric:
        return rows, ""
    values = rows[:, numeric].astype(np.float64)
    gaps = np.isnan(values)
    gappy = int(gaps.any(axis=1).sum())
    if not gappy:
        return rows, ""
    if gappy * 2 <= len(rows):
        return rows[~gaps.any(axis=1)], f"{gappy} rows with missing values left out"
    empty = np.flatnonzero(gaps.all(axis=0))
    if len(empty):
        raise BadRequest(
            f"column {numeric[int(empty[0])] + 1} of the data is missing in every row: the "
            "explanation background needs some value of each feature; add rows that have it"
        )
    with np.errstate(invalid="ignore"):
        medians = np.nanmedian(values, axis=0)
    filled = np.where(gaps, medians, values)
    kept = rows.copy()
    kept[:, numeric] = filled.astype(rows.dtype) if rows.dtype != object else filled
    return kept, (
        f"{int(gaps.sum()):,} missing values of {gappy:,} rows filled with their column's median"
    )


def missing_categories(columns: InputColumns) -> dict[int, TensorSpec]:
    """The flat string columns whose empty (or `NaN`, `NA`) cell is a missing category
    (scikit-learn's "nan", read from the graph at publish: `TensorSpec.missing`) -> their
    input, as `aiaas batch` reads them (`cell_text`)."""
    found: dict[int, TensorSpec] = {}
    start = 0
    for spec, width in zip(columns.specs, columns.widths, strict=True):
        if spec.missing is not None:
            found.update(dict.fromkeys(range(start, start + width), spec))
        start += width
    return found


def _text(cell: Any, column: int, missing: Mapping[int, TensorSpec]) -> str:
    return cell_text(missing[column], str(cell)) if column in missing else str(cell)


def row_values(
    cells: list[Any],
    strings: Sequence[int],
    gaps: frozenset[int] | None = None,
    names: Sequence[str] = (),
    missing: Mapping[int, TensorSpec] | None = None,
    integers: frozenset[int] = frozenset(),
    captured: bool = False,
) -> list[Any]:
    """A file row's values: strings in the `strings` columns (with `missing`, an empty cell or
    one pandas reads as NaN is its column's missing category), floats elsewhere (a ValueError for a cell that is not a
    number; with `gaps`, see `number`), whole numbers as written in the `integers` columns."""
    if None in cells:  # a line shorter than the header
        raise ValueError(f"{cells.count(None)} cell(s) missing")
    missing = missing or {}
    if integers:
        return [
            _text(v, c, missing) if c in strings
            else whole(v, c, gaps, names[c] if names else str(c), captured) if c in integers
            else number(v, c, gaps, names[c], captured) if gaps is not None
            else float(v)
            for c, v in enumerate(cells)
        ]  # fmt: skip
    if gaps is not None:
        return [
            _text(v, c, missing) if c in strings else number(v, c, gaps, names[c], captured)
            for c, v in enumerate(cells)
        ]
    return [_text(v, c, missing) if c in strings else float(v) for c, v in enumerate(cells)]


def table_cells(table: list[list[Any]], strings: Sequence[int]) -> np.ndarray:
    rows = [row_values(cells, strings) for cells in table]
    return np.array(rows, dtype=object).reshape(len(rows), -1)
