"""String (categorical) columns as numbers, so Kernel SHAP's masked rows stay one float array.

Each string column's values are numbered by their place in a list: the background's values
first (as `Background.categories` holds them), then any new value an explained row brings.
Masking then swaps numbers like any feature's, `same as every background row` is a comparison
of numbers, and the numbers turn back into strings only in the feeds onnxruntime is given (one
take per string column over the masked rows, no object array of them all).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from functions.runtime.input_columns import InputColumns


class CategoryCodes:
    """The numbering of each string column's values, for one explanation."""

    def __init__(
        self, columns: InputColumns, categories: Mapping[int, tuple[str, ...]] | None = None
    ) -> None:
        self.columns = columns
        known = categories or {}
        self._index = {c: {v: i for i, v in enumerate(known.get(c, ()))} for c in columns.strings}
        self._arrays: dict[int, np.ndarray] | None = None

    def copy(self) -> CategoryCodes:
        """A numbering to extend with one request's values, leaving this one as it is."""
        other = CategoryCodes(self.columns)
        other._index = {c: dict(index) for c, index in self._index.items()}
        return other

    def encode(self, table: np.ndarray) -> np.ndarray:
        """Float rows [N, F] of flat rows (strings in the string columns), numbering values
        not seen before after the others."""
        if not self._index:  # a wider float kept (an int64 past 2^53: `exact_floats`)
            return np.asarray(table, dtype=table.dtype if table.dtype.kind == "f" else np.float64)
        numeric = [c for c in range(table.shape[1]) if c not in self._index]
        kinds = {type(v) for v in table[:, numeric].ravel()}  # float, or a wider np.longdouble
        rows = np.empty(table.shape, dtype=np.result_type(np.float64, *kinds))
        rows[:, numeric] = table[:, numeric].astype(rows.dtype)
        for column, index in self._index.items():
            rows[:, column] = [index.setdefault(_text(v), len(index)) for v in table[:, column]]
        self._arrays = None
        return rows

    def feeds(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for numbered rows [N, F]: strings again where they go."""
        if not self._index:
            return self.columns.feeds(rows)
        if self._arrays is None:
            self._arrays = {
                c: np.array(list(index), dtype=object) for c, index in self._index.items()
            }
        return self.columns.feeds(rows, self._arrays)


def _text(value: object) -> str:
    # An OIP BYTES tensor's values arrive as bytes; the background's are str.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
