"""Regressors of several values a row: a forecast's horizons (`variable` [N, 7] of a skl2onnx
LinearRegression, RandomForestRegressor or MultiOutputRegressor fitted on 7 targets, a torch
model's `horizon` [N, 7]).

Their truth is the label's columns named as batch names an input's (`y_0` ... `y_6` for `y`,
the columns such a model was fitted on), or a JSONL field holding a list of as many numbers.
The metrics are scikit-learn's for several outputs: MAE and RMSE over every value, R² the mean
of each value's R² (`r2_score`'s `uniform_average`), one R² over all values would measure how
far apart the horizons' levels are, not how well any is predicted; and each value's own.
Before, such versions were compared on their outputs only: `metrics: none`, no picture, and a
`--max-drop` gate that could judge nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from functions.runtime.comparison import metrics
from functions.runtime.comparison.truth import number_truth
from functions.runtime.manifest import ModelManifest, TensorSpec

# Values a row read as a regression's: a forecast's horizons (7, 14, 28, 32). Both versions'
# values of every row compared are kept for the metrics, as one value a row is: 100,000 rows
# of 32 are 51 MB, where an embedding of 768 published as `other` would have been 1.2 GB.
MAX_VALUES = 32


def several_values(a: ModelManifest, b: TensorSpec | None, spec: TensorSpec) -> int:
    """How many values a row `spec` (A's output) holds when it is a regression's several
    values, alike in B (`b`): a fixed second axis of 2 to MAX_VALUES and no other; else 0. An
    embedding is no regression: its values have no truth to meet."""
    if a.task == "embedding" or b is None or len(spec.shape) != 2:
        return 0
    width = spec.shape[1]
    several = isinstance(width, int) and 1 < width <= MAX_VALUES
    return width if several and b.shape == spec.shape else 0


def value_columns(label: str, width: int) -> list[str]:
    """The columns holding `label`'s values, as batch names an input's: `y_0` ... `y_6`."""
    return [f"{label}_{i}" for i in range(width)]


def has_truth(label: str, there: Sequence[str], width: int) -> bool:
    """Whether a file's columns (JSONL: its first record's fields) hold `label`'s truth."""
    return label in there or (width > 1 and all(c in there for c in value_columns(label, width)))


def rows_truth(values: Sequence[object], width: int) -> list[list[float] | None]:
    """Each row's truth as `width` floats; None for a row without them all (an empty cell, a
    list of another length, a word): such a row counts for the outputs, not the metrics."""
    found: list[list[float] | None] = []
    for value in values:
        numbers = number_truth(value) if isinstance(value, list | tuple) else []
        whole = len(numbers) == width and all(n is not None for n in numbers)
        found.append([float(n) for n in numbers if n is not None] if whole else None)
    return found


def quality(
    label: str | None, values: tuple[np.ndarray, np.ndarray], truth: list[object], output: str
) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
    """(metrics, points, why there are no metrics) of two versions' `output` values [rows,
    width] against the truth; metrics None without a label or a labelled row."""
    width = values[0].shape[1]
    numbers = rows_truth(truth, width)
    found = metrics.against_truth(label, (numbers, numbers), values, several_metrics, float)
    if found is not None:
        kept = np.asarray([n is not None for n in numbers], dtype=bool)
        real = np.asarray([n for n in numbers if n is not None], dtype=float)
        each = [
            [metrics.regressor_metrics(real[:, i], answer[kept][:, i]) for i in range(width)]
            for answer in values
        ]
        found["values"] = [
            {"value": i, "a": a, "b": b, "delta": metrics.deltas(a, b)}
            for i, (a, b) in enumerate(zip(*each, strict=True))
        ]
    pick = np.unique(np.linspace(0, values[0].size - 1, min(values[0].size, 2000)).astype(int))
    flat = [np.asarray(n if n is not None else [None] * width, dtype=object) for n in numbers]
    truths = np.concatenate(flat).tolist() if found and flat else None
    points = {
        "output": f"{output} (its {width} values a row)",
        "a": values[0].reshape(-1)[pick].tolist(),
        "b": values[1].reshape(-1)[pick].tolist(),
        "truth": None if truths is None else [truths[i] for i in pick.tolist()],
        "mean_abs_diff": float(np.mean(np.abs(values[0] - values[1]))),
    }
    given = [t for t in truth if t is not None]
    if found is None and label is not None and given:
        why = (
            f"{label!r} holds no {width} numbers a row (such as {str(given[0])[:40]!r}) to "
            f"compare {output!r}'s {width} values with: name the truth's columns T_0 ... "
            f"T_{width - 1} and give --label T, or a JSONL field holding a list of {width}"
        )
        return None, points, why
    return found, points, None


def several_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """MAE and RMSE over every value of `predicted` [rows, values] against `truth`, and R² the
    mean of each value's (over the values whose truth varies; None where none does)."""
    error = predicted - truth
    total = np.sum((truth - truth.mean(axis=0)) ** 2, axis=0)
    varies = total > 0
    each = 1.0 - np.sum(error**2, axis=0)[varies] / total[varies]
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": float(np.mean(each)) if varies.any() else None,
    }
