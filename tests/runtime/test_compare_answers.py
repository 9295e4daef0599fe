"""How a shadow's answer is compared with the caller's (functions/runtime/dataplane/compare.py):
the largest absolute and relative differences, non-finite served values left out, a shadow
that turns a finite value non-finite refused. Checked against a plain per-element reading."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions.runtime.dataplane.compare import REL_FLOOR, Incomparable, compare


def answer(values: object) -> dict[str, object]:
    return {"outputs": {"y": np.asarray(values, dtype=np.float32)}}


def by_element(served: list[float], shadow: list[float]) -> tuple[float, float]:
    """The rule, one element at a time."""
    max_abs = max_rel = 0.0
    for a, b in zip(served, shadow, strict=True):
        if not math.isfinite(a):
            continue
        diff = abs(float(np.float32(a)) - float(np.float32(b)))
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / max(abs(float(np.float32(a))), REL_FLOOR))
    return max_abs, max_rel


@pytest.mark.parametrize(
    ("served", "shadow"),
    [
        pytest.param([1.0, -2.0, 0.5], [1.5, -2.0, 0.25], id="finite"),
        pytest.param([0.0, 3.0], [1e-3, 3.0], id="zero-served"),
        pytest.param([math.nan, 2.0, math.inf], [math.nan, 2.5, 7.0], id="served-not-finite"),
        pytest.param([-math.inf, 4.0], [-math.inf, 1.0], id="both-infinite"),
    ],
)
def test_differences_follow_the_rule(served: list[float], shadow: list[float]) -> None:
    found = compare(answer(served), answer(shadow))
    max_abs, max_rel = by_element(served, shadow)
    assert found.max_abs == pytest.approx(max_abs, rel=1e-12)
    assert found.max_rel == pytest.approx(max_rel, rel=1e-12)
    assert found.rows == len(served) and found.agreed is None


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_shadow_turning_a_finite_value_non_finite_is_incomparable(bad: float) -> None:
    with pytest.raises(Incomparable, match="non-finite"):
        compare(answer([1.0, 2.0]), answer([1.0, bad]))


def test_empty_outputs_differ_by_nothing() -> None:
    found = compare(answer(np.zeros((0, 3))), answer(np.zeros((0, 3))))
    assert (found.max_abs, found.max_rel) == (0.0, 0.0)
