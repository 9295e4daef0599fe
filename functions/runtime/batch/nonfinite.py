"""Rows the model answered NaN or infinity for: bad rows, as the predict API refuses them.

The predict API refuses a request whose outputs hold a NaN or an infinity (`check_finite`:
a 422 when each such row had a missing or infinite input, which a model published with
--allow-nonfinite takes; else a 500, the model failed): such a value is not an answer. Batch
scoring holds each row to the same rule, so the two agree on which rows are bad: a row with a
non-finite value in any float output is reported in the errors file and not written (text) or
filled like any unscored row (NPY); the other rows of its chunk are written as scored.

The check costs one BLAS call per float output of a chunk when everything is finite
(`validation.all_finite`); only a chunk with a bad row pays for one `np.isfinite` over its
outputs and a reason per bad row. Integer, bool and string outputs cannot be non-finite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from functions.runtime.finite import all_finite


def nonfinite_rows(outputs: Mapping[str, np.ndarray], rows: int) -> np.ndarray | None:
    """A mask of the `rows` rows with a NaN or an infinity in any float output; None when
    every value is finite (the common case)."""
    bad: np.ndarray | None = None
    for value in outputs.values():
        if value.dtype.kind != "f" or all_finite(value):
            continue
        found = ~np.isfinite(value.reshape(rows, -1)).all(axis=1)
        bad = found if bad is None else bad | found
    return bad


def nonfinite_reason(model_ref: str, outputs: Mapping[str, np.ndarray], row: int) -> str:
    """Why row `row` is bad: which outputs the model answered NaN or infinity in, and where."""
    found = []
    for name, value in outputs.items():
        if value.dtype.kind != "f":
            continue
        flat = value[row].reshape(-1)
        bad = np.flatnonzero(~np.isfinite(flat))
        if bad.size:
            where = f" value {int(bad[0])}" if flat.size > 1 else ""
            found.append(f"{_spelled(float(flat[bad[0]]))} in output '{name}'{where}")
    return (
        f"model {model_ref} answered {', '.join(found)} for this row; a prediction must be "
        "finite (the predict API refuses such a row too), so it was not scored"
    )


def _spelled(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "infinity" if value > 0 else "-infinity"
