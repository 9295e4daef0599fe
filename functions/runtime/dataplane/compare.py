"""How two versions' answers to the same request compare: the same class per row (classifiers,
their classes matched as `class_match.py` says: by name, or by class index for versions that
name their classes differently) and the largest absolute and relative difference of their
numeric outputs (all models).

Works on the simple JSON answers `ModelPlane.predict` builds (before serialisation, arrays
still numpy), so a shadow compares exactly what the caller got with what the shadow would have
answered. Class scores are compared on the classes both versions have, matched by name (a
class added, dropped or moved between versions), and not at all when nothing links the classes.
A shadow that answers other outputs, outputs of another shape (a regressor of another number of
values, a classifier against a model with no labels), or non-finite values where the answer the
caller got was finite, cannot be compared: `Incomparable` (counted as an error), saying why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime.dataplane.class_match import INDEX, NAME, UNMATCHED, ClassMatch

REL_FLOOR = 1e-12  # a relative difference divides by |answer|, at least this (0 vs 0 is 0)


class Incomparable(ValueError):
    """The two answers do not have the same outputs (names, shapes) or one is not finite."""


@dataclass(frozen=True)
class Comparison:
    """One request's comparison; `agreed` is None when the model gives no labels, or when the
    two versions' classes cannot be matched (`by` UNMATCHED)."""

    rows: int
    agreed: int | None
    max_abs: float
    max_rel: float
    by: str | None = None  # how the classes were matched: NAME, INDEX, UNMATCHED; None: no labels
    unshared: int = 0  # rows a version answered with a class the other lacks (they disagree)


def compare(
    served: Mapping[str, Any],
    other: Mapping[str, Any],
    labels: Collection[str] = (),
    classes: ClassMatch | None = None,
    scores: Collection[str] = (),
) -> Comparison:
    """Compare `other` (the shadow's answer) with `served` (the one the caller got). `labels`
    names outputs that hold class labels or indices: agreement judges those, and a difference
    of class numbers (1 against 2) is no measure of how far two answers are apart. `classes`:
    how the served version's classes (A) match the other's (B); None: by name. `scores` names
    outputs of one score per class: matched by name, they are compared on the classes both
    versions have (a class added, dropped or moved is no other kind of answer); when nothing
    links the classes, they are not compared at all."""
    outputs, theirs = served["outputs"], other["outputs"]
    versions = (str(served.get("version", "served")), str(other.get("version", "shadow")))
    if set(outputs) != set(theirs):
        raise Incomparable(
            f"versions {versions[0]} and {versions[1]} answer other outputs ({sorted(outputs)} "
            f"vs {sorted(theirs)}): not the same kind of model, nothing to compare"
        )
    predicted, shadowed = served.get("predictions"), other.get("predictions")
    if isinstance(predicted, list) is not isinstance(shadowed, list):
        kinds = [v for v, p in zip(versions, (predicted, shadowed), strict=True) if p is not None]
        raise Incomparable(
            f"version {kinds[0]} answers classes and the other does not (a classifier "
            "against a model that gives no labels): nothing to compare"
        )
    max_abs = max_rel = 0.0
    rows = 0
    for name, value in outputs.items():
        mine, yours = np.asarray(value), np.asarray(theirs[name])
        if name in scores and classes is not None:
            mine, yours = _shared_columns(mine, yours, classes)
        if mine.shape != yours.shape:
            raise Incomparable(_shapes_differ(name, mine.shape, yours.shape, versions))
        rows = max(rows, mine.shape[0] if mine.ndim else 1)
        if mine.dtype.kind in "biuf" and yours.dtype.kind in "biuf" and name not in labels:
            abs_diff, rel_diff = _differences(name, mine, yours)
            max_abs, max_rel = max(max_abs, abs_diff), max(max_rel, rel_diff)
    if not isinstance(predicted, list) or not isinstance(shadowed, list):
        return Comparison(rows, None, max_abs, max_rel)
    if len(predicted) != len(shadowed):
        raise Incomparable(f"{len(predicted)} predictions vs {len(shadowed)}")
    by = NAME if classes is None else classes.by
    if by is None:  # nothing says which class is which: no agreement to count
        return Comparison(len(predicted), None, max_abs, max_rel, UNMATCHED)
    as_a = classes.table if classes is not None and by == INDEX else {}
    agreed = _agreed(predicted, shadowed, as_a)
    unshared = _unshared(predicted, shadowed, classes) if classes is not None else 0
    return Comparison(len(predicted), agreed, max_abs, max_rel, by, unshared)


def _shared_columns(
    mine: np.ndarray, yours: np.ndarray, classes: ClassMatch
) -> tuple[np.ndarray, np.ndarray]:
    """Class scores (one column per class) as compared: the columns of the classes both have,
    in A's order (matched by name); as they are when the columns pair up by index; none of
    either when nothing links the classes, or when scores of another shape are not one column
    per class (a binary sigmoid's one column against three classes': the labels still say)."""
    per_class = mine.ndim == yours.ndim == 2
    if not per_class or (mine.shape[1], yours.shape[1]) != (len(classes.a), len(classes.b)):
        if not per_class or mine.shape == yours.shape:
            return mine, yours
        return mine[:, :0], yours[:, :0]
    if classes.by is None:  # no column of one is any column of the other
        return mine[:, :0], yours[:, :0]
    columns = classes.columns
    if columns is None:
        return mine, yours
    return mine[:, columns[0]], yours[:, columns[1]]


def _shapes_differ(
    name: str, mine: tuple[int, ...], yours: tuple[int, ...], versions: tuple[str, str]
) -> str:
    said = f"output {name!r} has shape {mine} in version {versions[0]} and {yours} in {versions[1]}"
    if len(mine) == len(yours) > 1 and mine[0] == yours[0]:  # the same rows, other values
        return f"{said}: another number of values a row, not the same kind of answer"
    return said


def _differences(name: str, mine: np.ndarray, yours: np.ndarray) -> tuple[float, float]:
    a, b = mine.astype(np.float64), yours.astype(np.float64)
    if a.size == 0:
        return 0.0, 0.0
    finite = np.isfinite(a)
    whole = bool(finite.all())  # the usual answer: no masks, no nan_to_num (a shadow's replay)
    if not np.isfinite(b if whole else b[finite]).all():
        raise Incomparable(f"output {name!r} of the shadow has non-finite values")
    if whole:
        diff = np.abs(a - b)
    else:  # where the served answer was not finite either: nothing to compare
        diff = np.abs(np.subtract(a, b, out=np.zeros_like(a), where=finite))
        a = np.where(finite, a, 0.0)
    rel = diff / np.maximum(np.abs(a), REL_FLOOR)
    return float(diff.max()), float(rel.max())


def _agreed(mine: list[Any], yours: list[Any], as_a: Mapping[str, str]) -> int:
    """Rows with the same class, the other's labels read as A's names through `as_a`."""
    if not as_a:
        return sum(1 for a, b in zip(mine, yours, strict=True) if a.get("label") == b.get("label"))
    same = 0
    for a, b in zip(mine, yours, strict=True):
        theirs = b.get("label")
        same += a.get("label") == as_a.get(theirs, theirs)
    return same


def _unshared(mine: list[Any], yours: list[Any], classes: ClassMatch) -> int:
    """Rows where either version answered a class only it has (matched by name)."""
    only_a, only_b = classes.only
    if not only_a and not only_b:
        return 0
    ours, theirs = set(only_a), set(only_b)
    return sum(
        1
        for a, b in zip(mine, yours, strict=True)
        if a.get("label") in ours or b.get("label") in theirs
    )
