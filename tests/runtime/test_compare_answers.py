"""How a shadow's answer is compared with the caller's (functions/runtime/dataplane/compare.py):
the largest absolute and relative differences, non-finite served values left out, a shadow
that turns a finite value non-finite refused. Checked against a plain per-element reading."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from functions.runtime.dataplane.class_match import INDEX, NAME, UNMATCHED, ClassMatch
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


def labelled(labels: list[str]) -> dict[str, object]:
    """A classifier's simple answer: its scores, and one prediction a row."""
    return {
        "outputs": {"p": np.full((len(labels), 3), 0.5)},
        "predictions": [{"label": x} for x in labels],
    }


def match(a: tuple[str, ...], b: tuple[str, ...]) -> ClassMatch:
    """How classes `a` (served, version 1) and `b` (the shadow's, 2) are matched."""
    manifests = [SimpleNamespace(version=v, labels=x) for v, x in (("1", a), ("2", b))]
    return ClassMatch.of(*manifests)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "served", "shadow", "agreed", "by"),
    [
        pytest.param(("s", "v"), ("s", "v"), ["s", "v", "v"], ["s", "s", "v"], 2, NAME, id="same"),
        pytest.param(("s", "v"), ("v", "s"), ["s", "v", "v"], ["s", "s", "v"], 2, NAME, id="order"),
        pytest.param(("s", "v"), ("0", "1"), ["s", "v", "v"], ["0", "0", "1"], 2, INDEX, id="index"),
        pytest.param(("0", "1"), ("s", "v"), ["0", "1", "1"], ["s", "s", "v"], 2, INDEX, id="back"),
        pytest.param(("s", "v"), ("0", "1", "2"), ["s", "v", "v"], ["0", "0", "1"], None, UNMATCHED,
                     id="no-link"),
    ],
)  # fmt: skip
def test_labels_agree_as_their_classes_are_matched(
    a: tuple[str, ...],
    b: tuple[str, ...],
    served: list[str],
    shadow: list[str],
    agreed: int | None,
    by: str,
) -> None:
    """By name, or by class index (as `aiaas compare` matches them); no agreement where
    nothing links the classes. Compared by name, the index cases agreed on no row."""
    found = compare(labelled(served), labelled(shadow), classes=match(a, b))
    assert (found.rows, found.agreed, found.by) == (3, agreed, by)
    assert found.max_abs == 0.0  # the scores are compared as before
    by_name = compare(labelled(served), labelled(shadow))  # no match given: by name
    assert by_name.by == NAME and by_name.agreed == sum(map(str.__eq__, served, shadow))
