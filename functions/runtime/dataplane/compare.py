"""How two versions' answers to the same request compare: the same label per row (classifiers)
and the largest absolute and relative difference of their numeric outputs (all models).

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

REL_FLOOR = 1e-12  # a relative difference divides by |answer|, at least this (0 vs 0 is 0)


class Incomparable(ValueError):
    """The two answers do not have the same outputs (names, shapes) or one is not finite."""


@dataclass(frozen=True)
class Comparison:
    """One request's comparison; `agreed` is None when the model gives no labels."""

    rows: int
    agreed: int | None
    max_abs: float
    max_rel: float


def compare(
    served: Mapping[str, Any], other: Mapping[str, Any], labels: Collection[str] = ()
) -> Comparison:
    """Compare `other` (the shadow's answer) with `served` (the one the caller got). `labels`
    names outputs that hold class labels or indices: agreement judges those, and a difference
    of class numbers (1 against 2) is no measure of how far two answers are apart."""
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
    agreed = _agreed(served.get("predictions"), other.get("predictions"))
    if agreed is not None:
        rows = len(served["predictions"])
    return Comparison(rows, agreed, max_abs, max_rel)


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


def _agreed(mine: object, yours: object) -> int | None:
    if not isinstance(mine, list) or not isinstance(yours, list):
        return None
    if len(mine) != len(yours):
        raise Incomparable(f"{len(mine)} predictions vs {len(yours)}")
    return sum(1 for a, b in zip(mine, yours, strict=True) if a.get("label") == b.get("label"))
