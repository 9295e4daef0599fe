"""How two classifiers' classes are matched: the one rule `aiaas compare`, the shadow's agreement
and a rollout's `--min-agreement` use, so all three count the same rows as agreeing.

Two versions of a model may name the same classes differently: one published with `--labels
setosa,versicolor,virginica`, the next without (its labels then read from the graph: `0, 1,
2`), or trained on string labels and on class numbers (skl2onnx's label output is the class).
Compared by name, such versions agreed on no row. So the two label lists are matched first:

- by name when they share a name (the same classes in another order, a class added or
  dropped), or have the same list: a row agrees when both answer the same name;
- by class index when they share no name but have as many classes: A's i-th class is B's i-th,
  the link a class index in a file already relies on; B's answers are read as A's names;
- not at all when they share no name and differ in count: nothing says which class is which,
  so agreement is not measured (None, with the reason).

Light on purpose (no numpy at import): the shadow's tally, which the predict function's
telemetry imports, names its constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from functions.runtime import names

if TYPE_CHECKING:
    import numpy as np

    from functions.runtime.manifest import ModelManifest

NAME = "name"
INDEX = "class index"
UNMATCHED = "unmatched"  # a comparison's `by` when labelled answers' classes nothing links
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
        if ours == theirs or set(ours) & set(theirs):
            by: str | None = NAME
        else:
            by = INDEX if len(ours) == len(theirs) else None
        return cls((a.version, b.version), ours, theirs, by)

    @cached_property
    def table(self) -> dict[str, str]:
        """B's class name -> A's of the same index (matched by class index; else empty)."""
        return dict(zip(self.b, self.a, strict=True)) if self.by == INDEX else {}

    def b_as_a(self, labels: np.ndarray) -> np.ndarray:
        """B's answers in A's names (matched by class index; else as they are)."""
        import numpy as np  # this module stays light: the shadow's tally names its constants

        table = self.table
        if not table:
            return labels
        return np.asarray([table.get(label, label) for label in labels.tolist()], dtype=str)

    @cached_property
    def only(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The classes only A has, and those only B has (matched by name; else none)."""
        if self.by != NAME:
            return (), ()
        ours, theirs = set(self.a), set(self.b)
        return tuple(x for x in self.a if x not in theirs), tuple(
            x for x in self.b if x not in ours
        )

    @cached_property
    def columns(self) -> tuple[list[int], list[int]] | None:
        """A's and B's score columns of the classes both have, in A's order, when they are
        matched by name and their lists differ (a class added or dropped, another order);
        None when the columns pair up by index (the same list, or matched by class index)."""
        if self.by != NAME or self.a == self.b:
            return None
        at = {name: i for i, name in enumerate(self.b)}
        shared = [(i, at[name]) for i, name in enumerate(self.a) if name in at]
        return [i for i, _ in shared], [j for _, j in shared]

    def differ(self) -> dict[str, Any] | None:
        """What the report says of the two label lists: None when they are the same."""
        if self.a == self.b:
            return None
        only_a, only_b = self.only
        return {
            "a": list(self.a),
            "b": list(self.b),
            "matched_by": self.by,
            "note": self.note(),
            "only_a": list(only_a),  # matched by name: the classes only A has
            "only_b": list(only_b),
        }

    def pairs(self) -> str:
        """The classes paired by index, as a note lists them."""
        shown = [
            f"{names.shown(x)} = {names.shown(y)}" for x, y in zip(self.a, self.b, strict=True)
        ]
        return _listed(shown)

    def note(self) -> str:
        """What `aiaas compare` says of the match (its report's `labels_differ.note`)."""
        va, vb = self.versions
        who = f"versions {va} (A) and {vb} (B)"
        if self.by == INDEX:
            return (
                f"{who} name their classes differently and share no name; both have "
                f"{len(self.a)}, so they are matched by class index ({self.pairs()}): "
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
        only_a, only_b = ([names.shown(x) for x in got] for got in self.only)
        if not only_a and not only_b:
            return (
                f"{who} have the same classes in another order: they are matched by name, and "
                "a class index in the file that is another class to each leaves the metrics "
                "out (give the labels by name); class scores are compared by name"
            )
        return (
            f"{who} have different classes (only A: {_listed(only_a) or 'none'}; only B: "
            f"{_listed(only_b) or 'none'}): they are matched by name; each version is judged "
            "with its own labels, and a true class a version lacks is an error for it; a row "
            "either answers with a class the other lacks disagrees, and class scores are "
            "compared on the classes both have"
        )

    def shadow_note(self) -> str | None:
        """What the shadow's replay and a rollout say of agreement with shadow B of served A:
        None when both have the same classes in the same order."""
        va, vb = self.versions
        if self.by == INDEX:
            return (
                f"versions {va} and {vb} share no class name and both have {len(self.a)}: "
                f"agreement matches their classes by class index ({self.pairs()}); publish {vb} "
                f"with --labels naming its classes as {va} does to match them by name"
            )
        if self.by is None:
            unnamed = [v for v, got in zip(self.versions, (self.a, self.b), strict=True) if not got]
            differ = (
                f"{unnamed[0]} names none (published without --labels)"
                if unnamed
                else f"have {len(self.a)} and {len(self.b)} classes"
            )
            return (
                f"versions {va} and {vb} share no class name and {differ}: nothing says which "
                "class of one is which of the other, so agreement is not measured"
            )
        if self.a == self.b:
            return None
        only_a, only_b = ([names.shown(x) for x in got] for got in self.only)
        if not only_a and not only_b:
            return (
                f"versions {va} and {vb} have the same classes in another order: agreement "
                "and class scores match them by name"
            )
        return (
            f"versions {va} and {vb} have different classes (only {va}: "
            f"{_listed(only_a) or 'none'}; only {vb}: {_listed(only_b) or 'none'}): agreement "
            "matches them by name (a row either answers with a class the other lacks "
            "disagrees) and class scores are compared on the classes both have"
        )


def _listed(shown: list[str]) -> str:
    more = f", ... ({len(shown)} in all)" if len(shown) > SHOWN else ""
    return ", ".join(shown[:SHOWN]) + more
