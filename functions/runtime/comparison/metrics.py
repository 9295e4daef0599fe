"""Quality of a version's answers against ground truth, and how two versions' answers differ.

Classifiers: accuracy and macro F1 (averaged over every class that is either true or predicted,
as scikit-learn's default does), and a cross-version confusion matrix. Regressors: MAE, RMSE
and R². Written with numpy: the control plane does not ship scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def classifier_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 of `predicted` labels against `truth` (both arrays of str)."""
    classes = np.union1d(truth, predicted)
    f1 = []
    for label in classes:
        hit = float(np.sum((predicted == label) & (truth == label)))
        guessed, actual = float(np.sum(predicted == label)), float(np.sum(truth == label))
        f1.append(2 * hit / (guessed + actual) if guessed + actual else 0.0)
    return {"accuracy": float(np.mean(truth == predicted)), "macro_f1": float(np.mean(f1))}


def regressor_metrics(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """MAE, RMSE and R² of `predicted` against `truth` (float arrays); R² is None for a
    constant truth (it divides by the truth's variance)."""
    error = predicted - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else None
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": r2,
    }


def against_truth(
    label: str | None,
    truths: tuple[Sequence[Any], Sequence[Any]],
    answers: tuple[np.ndarray, np.ndarray],
    score: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
    kind: type,
) -> dict[str, Any] | None:
    """Both versions' metrics on the rows with a truth, each against its own reading of it
    (`truths`: A's, B's; a row without truth is None in both), and B minus A; None when no
    column was read or no row has a truth."""
    labelled = np.asarray([value is not None for value in truths[0]], dtype=bool)
    if label is None or not labelled.any():
        return None
    found = [
        score(np.asarray([v for v in truth if v is not None], dtype=kind), answer[labelled])
        for truth, answer in zip(truths, answers, strict=True)
    ]
    return {
        "label": label,
        "rows": int(labelled.sum()),
        "a": found[0],
        "b": found[1],
        "delta": deltas(found[0], found[1]),
    }


def deltas(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """B minus A for each metric both have (None where either is None)."""
    return {
        key: None if a[key] is None or b[key] is None else b[key] - a[key] for key in a if key in b
    }


def confusion(a: np.ndarray, b: np.ndarray, order: Sequence[str] = ()) -> dict[str, Any]:
    """Rows: A's label, columns: B's label, cells: how many rows got that pair. Labels in
    `order` (the model's classes, as its card draws them) first, others after, sorted."""
    seen = [str(x) for x in np.union1d(a, b)]
    known = [label for label in dict.fromkeys(order) if label in set(seen)]
    labels = known + sorted(set(seen) - set(known))
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[x] for x in a], [index[x] for x in b]), 1)
    return {"labels": labels, "matrix": matrix.tolist()}


def percentiles_ms(seconds: list[float]) -> dict[str, float | int | None]:
    """p50 and p99 of call durations in milliseconds, and how many calls were timed."""
    if not seconds:
        return {"p50_ms": None, "p99_ms": None, "calls": 0}
    p50, p99 = np.percentile(np.asarray(seconds) * 1e3, [50, 99])
    return {"p50_ms": round(float(p50), 4), "p99_ms": round(float(p99), 4), "calls": len(seconds)}
