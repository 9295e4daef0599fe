"""How two classifiers' classes are matched, so that each version is judged with its own labels.

Two versions of a model may name the same classes differently: one published with `--labels
setosa,versicolor,virginica`, the next without (its labels then read from the graph: `0, 1,
2`). Compared by name, B agreed with A on no row and scored 0 against a truth read as A's
names, though the truth was B's own labels. So the two label lists are matched first:

- by name when they share a name (the same classes in another order, a class added or
  dropped): a row agrees when both answer the same name, each version reads the truth with its
  own labels (a class index in the file by its own class order), and a true class a version
  lacks is an error for it;
- by class index when they share no name but have as many classes: A's i-th class is B's i-th,
  the link a class index in a file already relies on. B's answers, and a truth given in B's
  names, are read as A's names; the report lists the pairs, so a wrong pairing shows;
- not at all when they share no name and differ in count: agreement is not comparable (None,
  with the reason), and each version is still judged with its own labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime import names
from functions.runtime.comparison import metrics
from functions.runtime.comparison.scoring import Tally
from functions.runtime.comparison.truth import class_truth, unknown_labels
from functions.runtime.manifest import ModelManifest

NAME = "name"
INDEX = "class index"
SHOWN = 5  # class names (or pairs) a note lists; the report's lists hold them all


@dataclass(frozen=True)
class ClassMatch:
    """Versions `versions` (A, B) with classes `a` and `b`, matched `by` NAME, INDEX or None
    (nothing links them)."""

    versions: tuple[str, str]
    a: tuple[str, ...]
    b: tuple[str, ...]
    by: str | None

    @classmethod
    def of(cls, a: ModelManifest, b: ModelManifest) -> ClassMatch:
        ours, theirs = tuple(a.labels), tuple(b.labels)
        if set(ours) & set(theirs):
            by: str | None = NAME
        else:
            by = INDEX if len(ours) == len(theirs) else None
        return cls((a.version, b.version), ours, theirs, by)

    def b_as_a(self, labels: np.ndarray) -> np.ndarray:
        """B's answers in A's names (matched by class index; else as they are)."""
        if self.by != INDEX:
            return labels
        table = dict(zip(self.b, self.a, strict=True))
        return np.asarray([table.get(label, label) for label in labels.tolist()], dtype=str)

    def differ(self) -> dict[str, Any] | None:
        """What the report says of the two label lists: None when they are the same."""
        if self.a == self.b:
            return None
        return {"a": list(self.a), "b": list(self.b), "matched_by": self.by, "note": self.note()}

    def note(self) -> str:
        va, vb = self.versions
        who = f"versions {va} (A) and {vb} (B)"
        if self.by == INDEX:
            pairs = [
                f"{names.shown(x)} = {names.shown(y)}" for x, y in zip(self.a, self.b, strict=True)
            ]
            return (
                f"{who} name their classes differently and share no name; both have "
                f"{len(self.a)}, so they are matched by class index ({_listed(pairs)}): "
                "agreement, the confusion matrix and the metrics read B's classes as A's. To "
                f"match them by name, publish {vb} with --labels naming its classes as {va} does"
            )
        if self.by is None:
            return (
                f"{who} share no class name and have {len(self.a)} and {len(self.b)} classes: "
                "nothing says which of B's classes is which of A's, so agreement is not "
                "comparable; each version is judged with its own labels, and the confusion "
                "matrix shows which of B's classes each of A's became"
            )
        only_a = [names.shown(x) for x in self.a if x not in set(self.b)]
        only_b = [names.shown(x) for x in self.b if x not in set(self.a)]
        if not only_a and not only_b:
            return (
                f"{who} have the same classes in another order: they are matched by name, and "
                "each version reads class indices in the file in its own class order"
            )
        return (
            f"{who} have different classes (only A: {_listed(only_a) or 'none'}; only B: "
            f"{_listed(only_b) or 'none'}): they are matched by name; each version is judged "
            "with its own labels, and a true class a version lacks is an error for it"
        )


def classifier_quality(tally: Tally, match: ClassMatch, label: str | None) -> dict[str, Any]:
    """Agreement, how the classes were matched, both versions' metrics against the truth and
    the cross-version confusion matrix (rows: A's answer, columns: B's)."""
    answers = (np.concatenate(tally.labels[0]), match.b_as_a(np.concatenate(tally.labels[1])))
    if match.by == INDEX:
        truth = _truth_as_a(tally.truth, match)
        truths = (truth, truth)
        unknown = unknown_labels(truth, match.a)
    else:
        ours = class_truth(tally.truth, match.a)
        truths = (ours, ours if match.a == match.b else class_truth(tally.truth, match.b))
        unknown = _unknown_to_both(truths, match)
    found = metrics.against_truth(label, truths, answers, metrics.classifier_metrics, str)
    if found is not None:
        found["unknown_labels"] = unknown
    confusion = metrics.confusion(*answers, order=(*match.a, *match.b))
    if match.by == INDEX:  # the columns are B's classes: say what B calls them
        theirs = dict(zip(match.a, match.b, strict=True))
        confusion["b_labels"] = [theirs.get(x, x) for x in confusion["labels"]]
    doc: dict[str, Any] = {"agreement": _agreement(tally, match, answers)}
    if doc["agreement"] is None:
        doc["agreement_unavailable"] = match.note()
    doc.update(labels_differ=match.differ(), metrics=found, confusion=confusion)
    return doc


def _agreement(
    tally: Tally, match: ClassMatch, answers: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    if match.by is None:
        return None
    # By name it is the shadow's count (`dataplane/compare.py`); by index, of B's classes
    # read as A's.
    agreed = tally.agreed if match.by == NAME else int(np.sum(answers[0] == answers[1]))
    return {"rows": tally.rows, "agreed": agreed, "rate": agreed / tally.rows, "by": match.by}


def _truth_as_a(values: Sequence[object], match: ClassMatch) -> list[str | None]:
    """The truth in A's names: A's names as they are, B's as A's of the same index, else
    class indices (when the file holds nothing but indices)."""
    table = dict(zip(match.b, match.a, strict=True))
    texts = class_truth(values, ())  # as given, as text
    return class_truth([None if t is None else table.get(t, t) for t in texts], match.a)


def _unknown_to_both(
    truths: tuple[list[str | None], list[str | None]], match: ClassMatch
) -> dict[str, int]:
    """Rows per true label that neither version has (each reading the truth its own way)."""
    a, b = set(match.a), set(match.b)
    neither = [
        ours if ours not in a and theirs not in b else None
        for ours, theirs in zip(*truths, strict=True)
    ]
    return unknown_labels(neither, ())


def _listed(shown: list[str]) -> str:
    more = f", ... ({len(shown)} in all)" if len(shown) > SHOWN else ""
    return ", ".join(shown[:SHOWN]) + more
