"""Why a batch row's raw values cannot be cast to the model's input: the reason a bad row is
reported with, naming the input (or column) and its first bad value."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from functions.runtime.dtypes import BY_NAME
from functions.runtime.exact_casts import exact_bits
from functions.runtime.input_messages import missing_value, scaled_pixels_hint
from functions.runtime.manifest import TensorSpec

EXACT_FLOAT = 2.0**53  # float64 holds every integer below this, and not all above


def bad_reason(
    spec: TensorSpec,
    row: np.ndarray,
    columns: Sequence[str] = (),
    written: Sequence[str] | None = None,
) -> str:
    """Why one raw row of input `spec` cannot be cast: names the input and the first bad value,
    by its column where `columns` (the model's feature names) name the row's values, and as
    `written` (a CSV row's cells) has it where given: an integer past 2**53 reads as a float
    that is not the number in the file (9007199254740993 as ...992)."""
    shape = np.shape(row)
    flat = np.asarray(row).reshape(-1)
    target = BY_NAME[spec.dtype].numpy
    named = len(columns) == flat.size
    for index, item in enumerate(flat.tolist()):
        where = f"input '{spec.name}'" + (value_at(shape, index) if flat.size > 1 else "")
        if named:  # as an empty cell of the column is named: "column 'petal_length' ..."
            where = f"column '{columns[index]}'"
        # Past 2**53 the float read may not be the file's number: its cell is quoted instead.
        big = isinstance(item, float) and abs(item) >= EXACT_FLOAT
        shown = written[index] if written is not None and big else None
        if target.kind == "f" and math.isnan(item):
            if spec.gaps:
                continue  # taken: the graph imputes it
            return missing_value(where, "NaN")
        if target.kind == "f" and not np.isfinite(item):
            return f"{where} is {item}; this model needs finite numbers"
        if target.kind == "f" and type(item) is int and abs(item) > 2 ** exact_bits(target):
            return (
                f"{where} is {item}, an integer {spec.dtype} has no exact value for (integers "
                f"past 2^{exact_bits(target)} round); save {spec.dtype} values"
            )
        if target.kind == "f" and abs(item) > float(np.finfo(target.str).max):
            top = float(np.finfo(target.str).max)
            return f"{where} is {item:g}, out of {spec.dtype}'s range (±{top:.4g})"
        if target.kind == "b" and item not in (0, 1):
            return f"{where} is {item}; expected 0 or 1 (bool)"
        if target.kind in "iu":
            info = np.iinfo(target)  # type: ignore[type-var]
            # float(2**64 - 1) is 2**64: only past the bound's own float is a float beyond it
            # (a CSV cell of uint64's max reads so); an integer (JSONL's digits) is exact.
            exact = type(item) is int
            low, high = (info.min, info.max) if exact else (float(info.min), float(info.max))
            if not (exact or float(item).is_integer()) or not low <= item <= high:
                hint = _pixels_hint(target, flat)
                said = shown or item
                return f"{where} is {said}; expected an integer in [{info.min}, {info.max}]{hint}"
        wide = target.itemsize == 8  # only int64 / uint64 hold integers past 2**53
        if target.kind in "iu" and wide and isinstance(item, float) and abs(item) >= EXACT_FLOAT:
            said = shown or f"{item:.17g}"
            return (
                f"{where} is {said}, a number read as a float, which holds integers exactly "
                "only up to 2**53 (a CSV cell, a JSON number with a fraction or an exponent, a "
                "float array): send the integer as written digits in JSONL, or an int64 NPY"
            )
    return f"input '{spec.name}' cannot be cast to {spec.dtype}"


def _pixels_hint(target: np.dtype[np.generic], flat: np.ndarray) -> str:
    try:
        return scaled_pixels_hint(target, flat.astype(np.float64))
    except OverflowError:  # a JSONL integer past float64's range: no scaled pixel
        return ""


def quotes_cells(row: np.ndarray) -> bool:
    """Whether `bad_reason` would quote a cell of `row` as the file wrote it (a float past
    2**53): only then are its cells worth parsing again (`coerce_rows`' `written`)."""
    values = np.asarray(row).reshape(-1).tolist()  # as bad_reason reads them: Python numbers
    return any(isinstance(v, float) and abs(v) >= EXACT_FLOAT for v in values)


def value_at(shape: tuple[int, ...], index: int) -> str:
    """Where value `index` (row-major) of a row of `shape` is, as a reason says it: `value 62`
    of a flat row, `at index [5, 2]` of a window or an image (step 5 of sensor 2, as the
    predict API's `at index [0, 5, 2]` says it); a [50, 12] window's NaN was `value 62`."""
    if len(shape) < 2:
        return f" value {index}"
    return f" at index {[int(i) for i in np.unravel_index(index, shape)]}"
