"""How two versions' answers to the same request compare: the same class per row (classifiers,
their classes matched as `class_match.py` says: by name, or by class index for versions that
name their classes differently) and the largest absolute and relative difference of their
numeric outputs (all models).

Works on the simple JSON answers `ModelPlane.predict` builds (before serialisation, arrays
still numpy), so a shadow compares exactly what the caller got with what the shadow would have
answered. A shadow that answers differently shaped outputs, or non-finite values where the
answer the caller got was finite, cannot be compared: `Incomparable` (counted as an error).
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


def compare(
    served: Mapping[str, Any],
    other: Mapping[str, Any],
    labels: Collection[str] = (),
    classes: ClassMatch | None = None,
) -> Comparison:
    """Compare `other` (the shadow's answer) with `served` (the one the caller got). `labels`
    names outputs that hold class labels or indices: agreement judges those, and a difference
    of class numbers (1 against 2) is no measure of how far two answers are apart. `classes`:
    how the served version's classes (A) match the other's (B); None: by name."""
    outputs, theirs = served["outputs"], other["outputs"]
    if set(outputs) != set(theirs):
        raise Incomparable(f"outputs differ: {sorted(outputs)} vs {sorted(theirs)}")
    max_abs = max_rel = 0.0
    rows = 0
    for name, value in outputs.items():
        mine, yours = np.asarray(value), np.asarray(theirs[name])
        if mine.shape != yours.shape:
            raise Incomparable(f"output {name!r} has shape {mine.shape} vs {yours.shape}")
        rows = max(rows, mine.shape[0] if mine.ndim else 1)
        if mine.dtype.kind in "biuf" and yours.dtype.kind in "biuf" and name not in labels:
            abs_diff, rel_diff = _differences(name, mine, yours)
            max_abs, max_rel = max(max_abs, abs_diff), max(max_rel, rel_diff)
    predicted, shadowed = served.get("predictions"), other.get("predictions")
    if not isinstance(predicted, list) or not isinstance(shadowed, list):
        return Comparison(rows, None, max_abs, max_rel)
    if len(predicted) != len(shadowed):
        raise Incomparable(f"{len(predicted)} predictions vs {len(shadowed)}")
    by = NAME if classes is None else classes.by
    if by is None:  # nothing says which class is which: no agreement to count
        return Comparison(len(predicted), None, max_abs, max_rel, UNMATCHED)
    as_a = classes.table if classes is not None and by == INDEX else {}
    return Comparison(len(predicted), _agreed(predicted, shadowed, as_a), max_abs, max_rel, by)


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
