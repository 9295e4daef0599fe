"""What a target must be for its task: numbers to regress, or a handful of labels to classify.

Shared by `prepare` (training) and `data_checks` (`aiaas train --check`), so both refuse the
same targets with the same message, naming the spec field to change.
"""

from __future__ import annotations

import math

import numpy as np

from functions.runtime.codecs.nulls import MISSING_MARKERS
from training.cells import (
    ROW_INDEX,
    RowPlaces,
    decimal_comma,
    first_non_number,
    is_missing,
    numeric_column,
)
from training.errors import DataError, SpecError

# A classification target with more distinct non-integer numbers than this is a measurement.
MAX_FLOAT_CLASSES = 20


def regression_target(
    values: np.ndarray, name: str, noun: str = "column", places: RowPlaces = ROW_INDEX
) -> np.ndarray:
    """The target as float32; a value that is not a number says to fix the task or the target."""
    bad = first_non_number(values)
    if bad is not None and decimal_comma(bad[1]):  # Excel in many locales: a number all the same
        row, cell = bad
        raise DataError(
            f"target {name!r} has a non-numeric value {str(cell)[:40]!r} at {places(row)}; write "
            "numbers with no thousands separator and a point for decimals (1.5)"
        )
    if bad is not None and not is_missing(bad[1]):
        row, cell = bad
        raise DataError(
            f"spec field 'task': regression needs a numeric target, but {noun} {name!r} holds "
            f"{str(cell)[:40]!r} at {places(row)}; set task: classification to predict classes, or "
            "point dataset.target at a numeric column"
        )
    target = numeric_column(
        values, name, role="target", fix=_EMPTY_TARGET, gaps=_TARGET_GAPS, places=places
    )
    big = np.abs(target) > MAX_REGRESSION_TARGET
    if big.any():  # its squared error overflows float32: a NaN loss, "lower learning_rate"
        row = int(big.argmax())
        raise DataError(
            f"target {name!r} holds {target[row]:g} at {places(row)}: training squares errors in "
            f"float32, so a regression target must stay within +-{MAX_REGRESSION_TARGET:g}; "
            "rescale it (other units)"
        )
    return target.astype(np.float32)


# float32 squares a difference up to ~1.8e19; leave room for the model's own error.
MAX_REGRESSION_TARGET = 1e18


_EMPTY_TARGET = "; point dataset.target at the column to predict"
_TARGET_GAPS = "; drop the rows without a target (a model learns nothing from them)"


def class_labels(
    values: np.ndarray, name: str, places: RowPlaces = ROW_INDEX
) -> tuple[tuple[str, ...], np.ndarray]:
    """The sorted labels (numbers in numeric order) and each row's index into them."""
    text = _label_texts(values)
    # None (a Parquet null) and NaN (a float column's gap, or "NaN" in a CSV) are no class:
    # as labels they were classes 'None' and 'nan', and NaN broke the numeric sort.
    missing = [v is None or t == "" or _is_nan(t) for v, t in zip(values, text, strict=True)]
    empty = np.flatnonzero(missing)
    if empty.size:
        # `NA` rows are counted here too: one run names every row to drop, not one kind a run.
        marked = np.flatnonzero([t.lower() in LABEL_MARKERS for t in text])
        count, row, also = empty.size + marked.size, int(empty[0]), ""
        if marked.size:
            row = min(row, int(marked[0]))
            also = f" ({marked.size} written {str(text[marked[0]])!r}, a missing-value marker)"
        raise DataError(
            f"target {name!r} has {count} missing label{'s' * (count > 1)} in {len(values)} "
            f"rows{also}, the first at {places(row)}; drop the rows without a label (a model "
            "learns nothing from them)"
        )
    _refuse_markers(text, name, places)
    unique = sorted(set(text.tolist()), key=_label_order)
    _refuse_measurements(text, unique, name)
    _refuse_ids(text, unique, name)
    _refuse_two_spellings(text, unique, name, places)
    index = {label: i for i, label in enumerate(unique)}
    return tuple(unique), np.array([index[v] for v in text], dtype=np.int64)


def _label_texts(values: np.ndarray) -> np.ndarray:
    """Each label as text; a float column (Parquet, NPZ) of whole numbers reads `1`, as written
    from integers, not `1.0`: the classes a user named, whatever dtype a gap forced."""
    whole = values.dtype.kind == "f" and bool(np.all(np.mod(values[np.isfinite(values)], 1) == 0))
    if whole:
        return np.array([str(int(v)) if math.isfinite(v) else str(v) for v in values], object)
    return np.array([str(v).strip() for v in values], dtype=object)


def _refuse_markers(text: np.ndarray, name: str, places: RowPlaces) -> None:
    """`NA`, `#N/A`, `null`, `?` are how R, Excel and others write a missing label: as a
    class, the model learned to predict "missing" (features read them as gaps). `None` may
    name a class (none, mild, severe), so it stays one."""
    marked = np.flatnonzero([t.lower() in LABEL_MARKERS for t in text])
    if marked.size:
        first = str(text[marked[0]])
        raise DataError(
            f"target {name!r} has {marked.size} label{'s' * (marked.size > 1)} {first!r} (a "
            f"missing-value marker, not a class) in {len(text)} rows, the first at "
            f"{places(int(marked[0]))}; drop the rows without a label, or if {first!r} names a "
            "class, write it another way"
        )


# "" and NaN (any sign): missing labels above; `None` may name a class
LABEL_MARKERS = MISSING_MARKERS - {"", "nan", "-nan", "+nan", "none"}


def _is_nan(label: str) -> bool:
    try:
        return math.isnan(float(label))
    except ValueError:
        return False


def need_two_values(y: np.ndarray, name: str) -> None:
    """A regression target equal in every row leaves nothing to learn (R2 is 0 whatever)."""
    if len(y) and float(y.min()) == float(y.max()):
        raise DataError(
            f"spec field 'dataset.target': target {name!r} is {float(y[0]):g} in every row; "
            "regression needs a target that varies"
        )


def weighed_classes_known(class_weight: object, labels: tuple[str, ...]) -> None:
    """A `class_weight` mapping may only name classes the target holds (a typo weighs nothing)."""
    if not isinstance(class_weight, dict):
        return
    unknown = sorted(set(class_weight) - set(labels))
    if unknown:
        raise SpecError(
            f"spec field 'class_weight' names {unknown}, which the target does not hold; "
            f"its classes are {list(labels)}"
        )


def need_two_classes(labels: tuple[str, ...], name: str) -> None:
    if len(labels) < 2:
        raise DataError(
            f"spec field 'dataset.target': target {name!r} has a single class {labels[0]!r}; "
            "classification needs at least 2"
        )


def _label_order(label: str) -> tuple[int, float, str]:
    # "2" < "10" for integer class ids; names sort alphabetically after numbers.
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _refuse_two_spellings(
    text: np.ndarray, unique: list[str], name: str, places: RowPlaces
) -> None:
    """'1' and '1.0' are one class to the user (files joined from two exports), never two."""
    seen: dict[float, str] = {}
    for label in unique:
        kind, number, _ = _label_order(label)
        if kind == 0 and number in seen:
            first, second = (int(np.argmax(text == v)) for v in (seen[number], label))
            raise DataError(
                f"target {name!r} writes one class two ways: {seen[number]!r} at "
                f"{places(first)} and {label!r} at {places(second)}; write each class one way"
            )
        if kind == 0:
            seen[number] = label


def _refuse_measurements(text: np.ndarray, unique: list[str], name: str) -> None:
    """Many distinct fractional numbers, or whole numbers with fewer than 2 rows each on
    average, are a quantity to regress, not classes."""
    if len(unique) <= MAX_FLOAT_CLASSES or any(_label_order(u)[0] for u in unique):
        return
    fractional = next((v for v in text if not float(v).is_integer()), None)
    if fractional is not None:
        raise DataError(
            f"spec field 'task': target {name!r} has {len(unique)} distinct non-integer values "
            f"(e.g. {fractional}), too many to be classes; set task: regression, or point "
            "dataset.target at a column of class labels"
        )
    if len(unique) > len(text) / 2:  # whole numbers, most of them in a single row: a quantity
        raise DataError(
            f"spec field 'task': target {name!r} has {len(unique)} distinct numbers in "
            f"{len(text)} rows (e.g. {text[0]}), too many to be classes; set task: regression, "
            "or point dataset.target at a column of class labels"
        )


def _refuse_ids(text: np.ndarray, unique: list[str], name: str) -> None:
    """Text labels, most of them in a single row, are an id or a name, not classes: a target
    pointed at `customer_id` was told "the validation split is empty: 1 rows in the smallest
    class ... raise validation_split", a fix that fixes nothing."""
    if len(unique) <= MAX_FLOAT_CLASSES or len(unique) <= len(text) / 2:
        return
    if not any(_label_order(u)[0] for u in unique):
        return  # numbers: `_refuse_measurements`
    every = "a different value in every row" if len(unique) == len(text) else (
        f"{len(unique)} distinct values in {len(text)} rows"
    )  # fmt: skip
    raise DataError(
        f"spec field 'dataset.target': target {name!r} has {every} (e.g. {unique[0]!r}), "
        "fewer than 2 rows a class: an id, a name or free text, not classes; point "
        "dataset.target at the column of class labels"
    )
