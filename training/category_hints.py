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

from training.cells import DATE_TEXT, UNIT_NUMBER
from training.datasets import RawData

# Fewer distinct values than this are a handful of categories, whatever they look like
# ("10kg" and "20kg" bags): a unit or a date is said only for a column with more.
MANY_VALUES = 5
SHOWN = 3


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
        elif len(present) >= MANY_VALUES and all(DATE_TEXT.fullmatch(v) for v in present):
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


# A rare class one typing slip away from a far larger one reads as its misspelling: `chrun` on 6
# rows beside `churn` on 569 was warned as an imbalanced class to weigh up (class_weight:
# balanced), and learned as a fourth class (hunt_journey8 4). A slip is what a typist's finger
# does (rev15 6): two neighbouring letters swapped (`chrun`, `yse`), a letter doubled (`churrn`)
# or dropped (`chun`, `approve` for `approved`), or one changed for its QWERTY neighbour
# (`churm`), never the first letter (`imap`/`nmap`, `gambia`/`zambia`): a substitution of
# unrelated letters names another word as often as not (`skirt`/`shirt`, `scam`/`spam`,
# `moose`/`mouse`). Not where classes are told apart on purpose: a letter added in front or one
# not doubled added behind (`cats`/`cat`), a one-letter word (`grade a low`) or any digit
# (`class_1`/`class_2`). Pairs two slips or more apart never are (`normal`/`abnormal`,
# `valid`/`invalid`: rev14 1). Names of MISSPELT_LENGTH letters or more (a swap: 3, `yse`). And
# the class is tiny: at most MISSPELT_ROWS rows and MISSPELT_SHARE of the one it looks like (a
# slip is made on a few rows, not on a real class's dozens); any class not flagged keeps the
# imbalance advice.
MISSPELT_LENGTH = 4
MISSPELT_SHARE = 0.02
MISSPELT_ROWS = 20
_KEYS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS = {
    row[i]: {row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)}
    for row in _KEYS
    for i in range(len(row))
}


def _slip(a: str, b: str) -> tuple[int, str, str] | None:
    """Where `a` and `b` differ by one edit: its place, the letters it touches and what it did
    (changed, swapped, added: `a` has a letter more, dropped: `a` lacks one); None when they
    differ otherwise (or not at all)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return None
    at = 0
    while at < min(len(a), len(b)) and a[at] == b[at]:
        at += 1
    if len(a) == len(b):
        if a[at + 1 :] == b[at + 1 :]:
            return at, a[at] + b[at], "changed"
        swapped = a[at + 1 : at + 2] + a[at] + a[at + 2 :]
        return (at, a[at : at + 2], "swapped") if swapped == b[at:] else None
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    if longer[at + 1 :] != shorter[at:]:
        return None
    return at, longer[at], "added" if longer is a else "dropped"


def _typo(rare: str, common: str) -> bool:
    """Whether `rare` reads as `common` mistyped (see MISSPELT_LENGTH)."""
    a, b = rare.casefold(), common.casefold()
    if (slip := _slip(a, b)) is None:
        return False
    at, letters, did = slip
    if min(len(a), len(b)) < (3 if did == "swapped" else MISSPELT_LENGTH):
        return False
    if any(c.isdigit() for c in letters):
        return False  # numbered (`class_1`, `class_2`)
    if did == "changed" and (at == 0 or letters[1] not in _NEIGHBOURS.get(letters[0], ())):
        return False  # another word (`imap`/`nmap`, `skirt`/`shirt`), not a finger's slip
    if did == "added" and letters not in (a[at - 1 : at] if at else "", a[at + 1 : at + 2]):
        return False  # a letter added, not doubled: another word (`cats`, `acat`)
    if did == "dropped" and at == 0:
        return False  # a first letter dropped: another word (`rate` beside `irate`)
    for name in (a, b):  # a one-letter word tells them apart (`grade a low`, `grade b low`)
        if any(m.start() <= at < m.end() == m.start() + 1 for m in re.finditer(r"[^\W_]+", name)):
            return False
    return True


def spelt_like(name: str, labels: tuple[str, ...]) -> str | None:
    """The label `name` is another case of (`Mid` for `mid`) or a typing slip on (`hihg` for
    `high`, see `_typo`), if any: what a spec that names a class meant."""
    for label in labels:
        if label.casefold() == name.casefold() or _typo(name, label):
            return label
    return None


def misspelt_labels(labels: tuple[str, ...], counts: list[int]) -> dict[str, str]:
    """Each tiny class that looks like a typing slip on a far larger one -> that class."""
    found: dict[str, str] = {}
    for label, count in zip(labels, counts, strict=True):
        if count > MISSPELT_ROWS:
            continue
        likely = [
            other
            for other, theirs in zip(labels, counts, strict=True)
            if count <= MISSPELT_SHARE * theirs and _typo(label, other)
        ]
        if likely:
            found[label] = max(likely, key=lambda other: counts[labels.index(other)])
    return found


def misspelling_warning(labels: tuple[str, ...], counts: list[int], target: str) -> str | None:
    """The warning for `misspelt_labels`, a check to make: each class with its rows and the
    larger one it is spelt like."""
    found = misspelt_labels(labels, counts)
    if not found:
        return None
    rows = dict(zip(labels, counts, strict=True))
    shown = "; ".join(
        f"{label!r} ({rows[label]} row{'s' * (rows[label] != 1)}) beside {other!r} ({rows[other]})"
        for label, other in list(found.items())[:SHOWN]
    )
    label, other = next(iter(found.items()))
    many = len(found) > 1
    return (
        f"target {target!r} has {'classes' if many else 'a class'} spelt like a far larger one "
        f"({shown}): if {label!r} is a misspelling of {other!r}, fix those {rows[label]} "
        f"row{'s' * (rows[label] != 1)} in the file{' (and the others alike)' * many}; as "
        "written, it is a class of its own, learned apart"
    )
