"""Held-out metrics in numpy: the same code scores torch outputs and onnxruntime outputs."""

from __future__ import annotations

from typing import Any

import numpy as np

# The metric quantization is gated on, per task; both are reported in points (x 100).
PRIMARY = {"classification": "accuracy", "regression": "r2"}
# True when a larger value is better.
HIGHER_IS_BETTER = {
    "accuracy": True,
    "f1": True,
    "r2": True,
    "rmse": False,
    "mae": False,
    "loss": False,
}


def classification_metrics(y_true: np.ndarray, logits: np.ndarray, classes: int) -> dict[str, Any]:
    """Accuracy, macro F1 and the confusion matrix (rows: true class, columns: predicted).

    Macro F1 averages over the classes that are true or predicted in these rows, as
    scikit-learn's default and `aiaas compare` do: a rare class that a split never holds and the
    model never answers is no F1 of 0 (it read 0.33 for 0.49 with one such class of three)."""
    return class_metrics(np.asarray(y_true), np.asarray(logits).argmax(axis=1), classes)


def class_metrics(y_true: np.ndarray, predicted: np.ndarray, classes: int) -> dict[str, Any]:
    """`classification_metrics` of predicted class indices (what a served label names)."""
    confusion = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(confusion, (y_true, predicted), 1)
    hits = np.diag(confusion).astype(np.float64)
    precision = np.divide(
        hits, confusion.sum(axis=0), out=np.zeros(classes), where=confusion.sum(axis=0) > 0
    )
    recall = np.divide(
        hits, confusion.sum(axis=1), out=np.zeros(classes), where=confusion.sum(axis=1) > 0
    )
    denominator = precision + recall
    f1 = np.divide(
        2 * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0
    )
    seen = (confusion.sum(axis=0) + confusion.sum(axis=1)) > 0
    return {
        "accuracy": float(hits.sum() / max(len(y_true), 1)),
        "f1": float(f1[seen].mean()) if seen.any() else 0.0,
        "rows": len(y_true),
        "confusion_matrix": confusion.tolist(),
    }


def regression_metrics(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE and R2 in target units."""
    y = np.asarray(y_true, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64).reshape(-1) - y
    total = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt((error**2).mean())),
        "mae": float(np.abs(error).mean()),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else 0.0,
        "rows": len(y),
    }


def score(task: str, y_true: np.ndarray, outputs: np.ndarray, classes: int) -> dict[str, Any]:
    """The task's metrics for model `outputs` (logits or predictions)."""
    if task == "classification":
        return classification_metrics(y_true, outputs, classes)
    return regression_metrics(y_true, outputs)


def improved(metric: str, value: float, best: float | None, min_delta: float) -> bool:
    """Whether `value` beats `best` by more than `min_delta` in the metric's direction."""
    if best is None:
        return True
    if HIGHER_IS_BETTER.get(metric, False):
        return value > best + min_delta
    return value < best - min_delta


def per_class(confusion: list[list[int]]) -> list[dict[str, float | None]]:
    """Each class's precision, recall and F1 from a confusion matrix (rows: true class, columns:
    predicted); None where undefined (no row predicted as it: no precision; no true row: no
    recall). Accuracy hides a minority: 0.99 on a 99:1 split is the model that never answers it."""
    counts = np.asarray(confusion, dtype=np.int64)
    hits, predicted, true = np.diag(counts), counts.sum(axis=0), counts.sum(axis=1)
    rows: list[dict[str, float | None]] = []
    for i in range(len(counts)):
        precision = float(hits[i] / predicted[i]) if predicted[i] else None
        recall = float(hits[i] / true[i]) if true[i] else None
        f1 = (
            2 * precision * recall / (precision + recall)
            if precision is not None and recall is not None and precision + recall > 0
            else (0.0 if true[i] or predicted[i] else None)
        )
        rows.append({"precision": precision, "recall": recall, "f1": f1})
    return rows


def missed_classes(confusion: list[list[int]], labels: tuple[str, ...] | list[str]) -> list[str]:
    """A warning per class the held-out rows hold but the model never answers for them."""
    counts = np.asarray(confusion, dtype=np.int64)
    if counts.size == 0:
        return []
    hits, true = np.diag(counts), counts.sum(axis=1)
    missed = [i for i in range(len(counts)) if true[i] and not hits[i]]
    if not missed:
        return []
    named = ", ".join(f"{str(labels[i])!r} ({int(true[i])} rows)" for i in missed)
    accuracy = float(hits.sum() / max(int(counts.sum()), 1))
    answered = np.flatnonzero(counts.sum(axis=0))
    only = (
        f"it answers {str(labels[int(answered[0])])!r} for every test row; "
        if len(answered) == 1
        else ""
    )
    return [
        f"the model gets no test row of class{'es' * (len(missed) > 1)} {named} right "
        f"(recall 0): {only}its accuracy {accuracy:.4f} says nothing about "
        f"{'those classes' if len(missed) > 1 else 'that class'}. Judge it by macro_f1 and the per-class recall "
        "in the card's Classes table; weigh the classes (class_weight: balanced), train longer, "
        "or add rows of the class"
    ]
