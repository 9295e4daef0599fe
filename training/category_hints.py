"""Warnings about text (category) columns that one-hot encoding learns, but not as meant.

A category is matched as written, in training and when serving (`training.table_prep`), less
the blanks around it (training strips them from the cells it reads, the served model from the
strings it is sent): a column that writes one value several ways ("Paris", "paris"), numbers
with a unit ("12kg") or dates ("2024-01-31") trains, but a served value written another way, a
weight or a date not in the training file encodes as all zeros, with no error. `aiaas train` (and `--check`) says so
before training, with the edit to make; a column that is one category in every row is said
too (it tells the model nothing). Classification labels written several ways are said alike.
"""

from __future__ import annotations

import re
from collections import defaultdict

from training.cells import UNIT_NUMBER
from training.datasets import RawData

# Fewer distinct values than this are a handful of categories, whatever they look like
# ("10kg" and "20kg" bags): a unit or a date is said only for a column with more.
MANY_VALUES = 5
SHOWN = 3
_DATE = re.compile(r"\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})([ T].*)?")


def category_warnings(raw: RawData) -> list[str]:
    """One line per text column whose categories are not what the user may think."""
    warnings = []
    for i in raw.text_columns:
        name = raw.feature_names[i]
        values = [str(v) for v in raw.x[:, i]]
        distinct = sorted(set(values))
        if len(distinct) == 1:
            warnings.append(
                f"feature column {name!r} is {distinct[0]!r} in every row; it tells the model "
                "nothing: add it to dataset.exclude"
            )
            continue
        present = [v for v in distinct if v.strip()]
        if len(present) >= MANY_VALUES and all(UNIT_NUMBER.fullmatch(v) for v in present):
            warnings.append(
                f"feature column {name!r} holds numbers with a unit (e.g. {present[0]!r}): each "
                f"of its {len(distinct)} values is a category, and one not in the training "
                "file is none of them when serving; write the numbers alone (the unit in the "
                "header) to learn them as a number"
            )
        elif len(present) >= MANY_VALUES and all(_DATE.fullmatch(v) for v in present):
            warnings.append(
                f"feature column {name!r} holds dates (e.g. {present[0]!r}): each of its "
                f"{len(distinct)} dates is a category, and a date not in the training file "
                "(every later one) is none of them when serving; derive numbers from it (days "
                "since a date, month, weekday) or add it to dataset.exclude"
            )
        spellings = spelled_apart(distinct)
        if spellings:
            shown = "; ".join(", ".join(repr(v) for v in group) for group in spellings[:SHOWN])
            warnings.append(
                f"feature column {name!r} writes one value several ways ({shown}): each is its "
                "own category, in training and when serving (a value is matched as written: "
                "case counts, blanks around it do not); write each value one way in the file"
            )
    return warnings


def label_spellings(labels: tuple[str, ...], counts: list[int], target: str) -> str | None:
    """A warning for classes that differ only in case (`Gold`, `gold`; blanks around a label
    are stripped already): the model learns them apart and answers each as written."""
    rows = dict(zip(labels, counts, strict=True))
    groups = spelled_apart(list(labels))
    if not groups:
        return None
    shown = "; ".join(
        ", ".join(f"{v!r} ({rows[v]} row{'s' * (rows[v] != 1)})" for v in group)
        for group in groups[:SHOWN]
    )
    first = max(groups[0], key=lambda v: rows[v])
    return (
        f"target {target!r} writes one class several ways ({shown}): each is a class of its own, "
        f"learned apart and answered as written; if they are one class, write it one way in "
        f"the file (e.g. {first!r} in every row)"
    )


def spelled_apart(distinct: list[str]) -> list[list[str]]:
    """Groups of values that differ only in case or in blanks around them."""
    groups: dict[str, list[str]] = defaultdict(list)
    for value in distinct:
        groups[value.strip().casefold()].append(value)
    return [group for group in groups.values() if len(group) > 1]


# A class this much rarer than one spelt like it (difflib's ratio at least MISSPELT_RATIO) reads
# as its misspelling: `chrun` on 6 rows beside `churn` on 569 was warned as an imbalanced class
# to weigh up (class_weight: balanced), and learned as a fourth class (hunt_journey8 4).
MISSPELT_SHARE = 0.1
MISSPELT_RATIO = 0.8


def misspelt_labels(labels: tuple[str, ...], counts: list[int]) -> dict[str, str]:
    """Each rare class that looks like a misspelling of a far larger one -> that class. Names
    that differ only in their digits (`class_1`, `class_2`) are numbered, not misspelt."""
    import difflib

    found: dict[str, str] = {}
    for label, count in zip(labels, counts, strict=True):
        likely = [
            other
            for other, theirs in zip(labels, counts, strict=True)
            if other != label
            and count <= MISSPELT_SHARE * theirs
            and re.sub(r"\d", "", other) != re.sub(r"\d", "", label)
            and difflib.SequenceMatcher(None, label.casefold(), other.casefold()).ratio()
            >= MISSPELT_RATIO
        ]
        if likely:
            found[label] = max(likely, key=lambda other: counts[labels.index(other)])
    return found


def misspelling_warning(labels: tuple[str, ...], counts: list[int], target: str) -> str | None:
    """The warning for `misspelt_labels`, each class with its rows and the likely one."""
    found = misspelt_labels(labels, counts)
    if not found:
        return None
    rows = dict(zip(labels, counts, strict=True))
    shown = "; ".join(
        f"{label!r} ({rows[label]} row{'s' * (rows[label] != 1)}) like {other!r} ({rows[other]})"
        for label, other in list(found.items())[:SHOWN]
    )
    label, other = next(iter(found.items()))
    return (
        f"target {target!r} has classes that look misspelt ({shown}): each is a class of its "
        f"own, learned apart from the class it looks like; if {label!r} means {other!r}, write "
        "it so in the file"
    )
