"""Missing values in JSON: `null` is NaN for a float input of a model that takes missing values.

JSON has no NaN: JavaScript's JSON.stringify and pandas' to_json write a missing value as null.
A model whose graph takes them (an XGBoost or LightGBM export's trees, a SimpleImputer: read at
publish) or published with `--allow-nonfinite` gets NaN for it; a model that takes finite numbers only gets a 422 naming the value and how
such a model is published.
Only error paths come here: numpy gives an object array only when a value is not a number.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from functions.runtime.column_names import exported_name
from functions.runtime.errors import InvalidInput
from functions.runtime.input_messages import missing_value, number_word
from functions.runtime.manifest import TensorSpec

# How spreadsheets, pandas and R write a cell with no value: training reads these as gaps
# (training/cells.py), so batch CSV and file explanations read them so too, for a model that
# takes missing values. Any case; pandas' read_csv reads each as NaN (its default na_values,
# with `#NA`, `<NA>` for pd.NA, `NaT`, a C library's `-nan` and MSVC's `1.#QNAN`), and every
# spelling float() reads as NaN (`-nan`, `+NaN`) is one: a NaN is a gap, whatever its sign.
MISSING_MARKERS = frozenset(
    {"", "na", "n/a", "#n/a", "#n/a n/a", "#na", "<na>", "null", "none", "nat", "?"}
    | {"nan", "-nan", "+nan", "1.#qnan", "-1.#qnan", "1.#ind", "-1.#ind"}
)


def missing_marker(text: str) -> bool:
    """An empty cell or a missing-value marker such as `NA` (any case, blanks around)."""
    return text.strip().lower() in MISSING_MARKERS


# The cells pandas' read_csv reads as NaN by default (its na_values, case as written): a string
# column's gap in the frame scikit-learn was fit on, which a OneHotEncoder fit on gaps encodes
# as its missing category (skl2onnx's "nan"). Only those spellings: a category "?" or "n.a."
# stays a category, as pandas keeps it.
PANDAS_NA_CELLS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


def category_gap(text: str) -> bool:
    """A string cell pandas reads as a missing value (empty, `NaN`, `NA`, ... as written):
    sent as the input's missing category where its encoder learnt one, as `predict_proba` on
    the frame read from the same file encodes it. Blanks count: read_csv keeps `" NA"` (what
    `a, NA` writes), `"NA "` and `"  "` as texts, so an encoder fit on such a file learnt each
    as a category (stripped, `" NA"` was scored as the gap, with success)."""
    return text in PANDAS_NA_CELLS


def na_categories(missing: str, categories: tuple[str, ...]) -> tuple[str, ...]:
    """The spellings of a gap (PANDAS_NA_CELLS, empty aside) that an encoder with the missing
    category `missing` learnt as `categories` of their own: a frame holding the text "n/a" or
    "None" beside its NaN gaps (read from a database, or with keep_default_na=False)."""
    return tuple(sorted(c for c in categories if c != missing and c and c in PANDAS_NA_CELLS))


def cell_text(spec: TensorSpec, text: str) -> str:
    """A CSV cell of the string input `spec` as its graph gets it: the input's missing category
    where the cell is a gap as pandas reads one (`category_gap`), unless its encoder learnt
    that spelling as a category of its own (`spec.na_categories`: the text "n/a" it was fit on
    was sent as the gap, a wrong answer with success); else the text as written."""
    if spec.missing is None or not category_gap(text) or text in spec.na_categories:
        return text
    return spec.missing


def nan_texts_as_null(
    record: object, texts: frozenset[str], categories: Mapping[str, str] | None = None
) -> object:
    """`record` (a JSON line read by Python's json, which takes NaN) with a NaN under a string
    input's field (`texts`: their names; a DataFrame column exported as one too) made the null
    it stands for: `json.dumps` of a pandas row writes a missing text as NaN. It was refused as a
    number among texts, where null is the model's missing category (or its "send \"\"").
    Under an input of `categories` (`nan_categories`) the NaN is that input's NaN category
    itself: there a null is refused as either of two, and json.dumps writes None as null."""
    if not isinstance(record, dict) or not texts:
        return record
    for key, value in record.items():
        if (
            type(value) is float
            and value != value
            and (key in texts or exported_name(key) in texts)
        ):
            found = (categories or {}).get(key) or (categories or {}).get(exported_name(key))
            record[key] = found
    return record


def nan_categories(inputs: tuple[TensorSpec, ...]) -> dict[str, str]:
    """The string inputs whose encoder learnt NaN ("nan") and Python None ("None") apart, each
    with its NaN category: a null there is refused (sent_values.ambiguous_null), a NaN is NaN."""
    return {
        s.name: s.missing for s in inputs if s.missing is not None and "None" in s.na_categories
    }


def is_number(item: object) -> bool:
    """A JSON number as Python reads it (true/false are not numbers)."""
    return type(item) is int or type(item) is float


def takes_missing(spec: TensorSpec) -> bool:
    """Whether a null may stand for NaN in this input: a float input of a model that accepts
    non-finite values, or one its graph imputes (`gaps`: NaN only, infinity still refused)."""
    return spec.dtype.startswith("float") and (not spec.finite or spec.gaps)


def first_null(array: np.ndarray) -> tuple[int, ...] | None:
    """Where the first null of an object array of numbers and nulls is; None when it has no
    null or holds anything else (text, true/false, objects: the caller's own error)."""
    flat = array.reshape(-1).tolist()
    if not all(item is None or is_number(item) for item in flat):
        return None
    first = next((i for i, item in enumerate(flat) if item is None), None)
    if first is None:
        return None
    return tuple(int(i) for i in np.unravel_index(first, array.shape))


def null_error(spec: TensorSpec, where: str) -> InvalidInput:
    """The 422 for a null in an input that cannot take it."""
    if spec.dtype.startswith("float"):
        return InvalidInput(missing_value(where, "null"))
    return InvalidInput(
        f"{where} is null, a missing value, which {spec.dtype} cannot hold; send "
        f"{number_word(spec.dtype)}"
    )


def nulls_as_nan(array: np.ndarray, spec: TensorSpec) -> np.ndarray | None:
    """`array` (an object array) as float64 with NaN for its nulls when `spec` takes missing
    values; the 422 naming the first null when it does not; None when the array holds more
    than numbers and nulls (the caller says what)."""
    index = first_null(array)
    if index is None:
        return None
    if not takes_missing(spec):
        raise null_error(spec, f"input '{spec.name}' at index {list(index)}")
    return array.astype(np.float64)


def texts_with_nulls(array: np.ndarray) -> bool:
    """Texts with a null among them (a text model's rows, one missing): its row is named later."""
    flat = array.reshape(-1).tolist()
    return any(isinstance(v, str) for v in flat) and all(
        v is None or isinstance(v, str) for v in flat
    )
