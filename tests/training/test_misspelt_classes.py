"""Which rare classes read as a typing slip on a larger one (training/category_hints.py).

The rule flagged real classes on realistic sets, replacing their imbalance advice with "looks
misspelt" (`imap` beside `nmap` in KDD Cup 99, `skirt`/`shirt`, `moose`/`mouse`,
`gambia`/`zambia`, `scam`/`spam`), and missed common slips (`yse` for `yes`, `churm` for
`churn`, `approve` for `approved`): rev15 6. A slip is now a finger's: two neighbouring letters
swapped, a letter doubled or dropped, or one changed for its keyboard neighbour, never the
first; on a class of at most 20 rows and 2% of its look-alike's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.training.test_check_targets import _check, _csv_job
from training.category_hints import misspelt_labels


@pytest.mark.parametrize(
    ("rare", "rows", "common", "theirs"),
    [
        ("imap", 12, "nmap", 231),  # KDD Cup 99 (10%): real attack classes
        ("skirt", 80, "shirt", 5000),
        ("skirt", 8, "shirt", 5000),  # few rows, but another letter, not a finger's slip
        ("moose", 40, "mouse", 4000),
        ("moose", 4, "mouse", 4000),
        ("gambia", 10, "zambia", 900),
        ("scam", 20, "spam", 700),
        ("scam", 5, "spam", 700),
        ("cats", 5, "cat", 900),
        ("churns", 5, "churn", 900),
        ("type_b", 5, "type_a", 900),
        ("class_1", 5, "class_2", 900),
        ("rate", 5, "irate", 900),
        ("abnormal", 5, "normal", 900),
        ("chrun", 30, "churn", 5000),  # a slip's shape, but a class's rows
        ("chrun", 15, "churn", 500),  # 3% of its look-alike
    ],
)
def test_real_classes_are_not_flagged(rare: str, rows: int, common: str, theirs: int) -> None:
    assert misspelt_labels((common, rare, "other"), [theirs, rows, theirs]) == {}


@pytest.mark.parametrize(
    ("rare", "common"),
    [
        ("chrun", "churn"),  # swapped
        ("Chrun", "churn"),  # case folded
        ("yse", "yes"),  # swapped, 3 letters
        ("churm", "churn"),  # m beside n, the last letter
        ("churrn", "churn"),  # doubled
        ("chun", "churn"),  # dropped
        ("approve", "approved"),  # the last letter dropped
    ],
)
def test_slips_are_flagged(rare: str, common: str) -> None:
    assert misspelt_labels((common, rare, "other"), [500, 5, 400]) == {rare: common}


def test_a_real_rare_class_keeps_the_imbalance_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`imap` (12 rows) beside `nmap` (231) was told to look misspelt, its class_weight advice
    dropped; it is a class of its own, rare: an imbalance."""
    kinds = ["normal"] * 757 + ["nmap"] * 231 + ["imap"] * 12
    rows: list[list[Any]] = [[(i * 37) % 1009, i % 5, kinds[i]] for i in range(1000)]
    spec = _csv_job(tmp_path, ["bytes", "hour", "label"], rows, target="label")
    err = _check(tmp_path, spec, capsys)[2]
    assert "misspelling" not in err, err
    assert err.startswith("warning: target 'label' is imbalanced: class 'imap' is 1.2%"), err
    assert "class_weight: balanced" in err, err
