"""A string (categorical) column's baseline: its training categories and their counts.

Categories have no quantiles, so a string column is binned by value: one bin per category of
its training rows (the `MAX_CATEGORIES` most frequent), one, `(other)`, for the rarer training
values of a column with more categories (their names kept, up to `MAX_RARE`), and one, `(new)`,
for a value training never saw (a plan launched after training); rows in it are counted apart
as `outside`, like a number out of range, and rows moving between common and rare categories
show as `(other)`'s share changing. Not seen: a shift among the rare categories themselves (one
rare value traded for another), as they share one bin.

What `(new)` is expected to hold (`CategoryBaseline.expected`): by Good-Turing, the share of
rows of the same source holding a value training never saw is about p1, the share of training
rows holding a value no other training row holds (`one_off`), and those one-off values are
about as unlikely to come back as any new one. So the training rows of one-off values count as
`(new)`'s expectation, not their own bins': same-source traffic scores about 0 on a long-tailed
column (product names, short answers: p1 = 38% in the tests). Before, `(new)`'s expected share was the
1e-4 floor, and that bin alone scored p1 ln(p1 / 1e-4): 0.31 at p1 = 5%, over the 0.2 threshold
from p1 = 3.4%, DRIFT on every window of unchanged traffic. A category training never held
still scores: 5% of rows of new plans on a column of no one-off value, 0.05 ln(0.05 / 1e-4).

Free text is no category: a column most of whose training rows hold a value no other row holds
(a TF-IDF pipeline's text) is not watched by category (`free_text`): most of its served rows
would be `(new)`, so its PSI would mostly weigh how often a text is new, which says little of
what the model is given; the predictions (and any other column) still watch such a model.

A baseline written before `one_off` was recorded expects `(new)` at the floor as it did; one
written before `(new)` existed has no `rare` list either: its `(other)` bin takes both the rare
and the new values, as it did (its counts have one bin fewer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_CATEGORIES = 100  # bins a column keeps: a zip code's thousands would be noise, and JSON
MAX_RARE = 10_000  # rarer training values known by name (~100-200 kB of baseline at most)
FREE_TEXT_SHARE = 0.5  # of training rows holding a value no other row holds: free text above


@dataclass(frozen=True)
class CategoryBaseline:
    """One string column: its kept categories (most frequent first), the rarer training
    values (`rare`; None in a baseline from before `(new)`), counts [K + 2]: `(other)`'s then
    `(new)`'s last ([K + 1] without `rare`), and `one_off`: the training rows outside `(new)`
    holding a value no other row holds (None in a baseline from before it was recorded)."""

    name: str
    values: tuple[str, ...]
    counts: np.ndarray
    rare: tuple[str, ...] | None = None
    one_off: int | None = None
    _slots: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slots = {value: i for i, value in enumerate(self.values)}
        slots.update(dict.fromkeys(self.rare or (), len(self.values)))
        object.__setattr__(self, "_slots", slots)  # built once: bin() runs at every fold

    @property
    def unseen(self) -> int:
        """The bin of a value not among `values` or `rare`: `(new)`, or `(other)` before it."""
        return len(self.values) + (self.rare is not None)

    @property
    def expected(self) -> np.ndarray:
        """The counts PSI compares served ones with: the training rows of one-off values moved
        to `(new)` (module docstring), whose share is then p1, the one-off rows' (with any
        training values beyond `MAX_RARE`, already there). `counts` itself where `one_off` was
        not recorded, or without a `(new)` bin."""
        if self.one_off is None or self.rare is None:
            return self.counts
        expected = self.counts.copy()
        kept = expected[: len(self.values)]
        single = int(np.count_nonzero(kept == 1))  # a kept category seen once is one-off
        kept[kept == 1] = 0
        expected[-2] -= min(int(expected[-2]), max(0, self.one_off - single))  # rare one-offs
        expected[-1] += int(self.counts.sum() - expected.sum())
        return expected

    def bin(self, column: np.ndarray) -> np.ndarray:
        """Counts on these bins of `column`'s values."""
        found, inverse = np.unique(np.asarray(column, dtype=str), return_inverse=True)
        unseen = self.unseen
        slots = np.array([self._slots.get(v, unseen) for v in found], dtype=np.int64)
        slotted = slots[inverse.ravel()] if len(found) else np.zeros(0, dtype=np.int64)
        return np.bincount(slotted, minlength=unseen + 1).astype(np.int64)

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {"name": self.name, "values": list(self.values)}
        if self.rare is not None:
            doc["rare"] = list(self.rare)
        if self.one_off is not None:
            doc["one_off"] = self.one_off
        return {**doc, "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CategoryBaseline:
        values = tuple(str(v) for v in data["values"])  # type: ignore[attr-defined]
        raw = data.get("rare")
        rare = None if raw is None else tuple(str(v) for v in raw)  # type: ignore[attr-defined]
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.shape != (len(values) + 1 + (rare is not None),):
            raise ValueError(f"categories of {data['name']} do not match their counts")
        one_off = data.get("one_off")
        one_off = None if one_off is None else int(one_off)  # type: ignore[call-overload]
        return cls(str(data["name"]), values, counts, rare, one_off)


def category_baseline(name: str, column: np.ndarray) -> CategoryBaseline:
    """The baseline of a string column's training values."""
    found, counts = np.unique(np.asarray(column, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept, rare = order[:MAX_CATEGORIES], order[MAX_CATEGORIES : MAX_CATEGORIES + MAX_RARE]
    beyond = int(counts.sum() - counts[kept].sum() - counts[rare].sum())
    binned = np.append(counts[kept], [counts[rare].sum(), beyond]).astype(np.int64)
    one_off = int(np.count_nonzero(counts[np.concatenate([kept, rare])] == 1))
    values, known = tuple(str(v) for v in found[kept]), tuple(str(v) for v in found[rare])
    return CategoryBaseline(name, values, binned, known, one_off)


def free_text(column: np.ndarray) -> bool:
    """Whether a string column's training values are free text, not categories: more than
    `FREE_TEXT_SHARE` of its rows hold a value no other row holds (module docstring: the share
    of served rows that would count as `(new)` with no drift at all)."""
    _, counts = np.unique(np.asarray(column, dtype=str), return_counts=True)
    return bool(np.count_nonzero(counts == 1) > FREE_TEXT_SHARE * len(column))


def free_text_note(names: tuple[str, ...]) -> str:
    """The baseline's and the report's line for its free-text columns ("" for none)."""
    if not names:
        return ""
    quoted = ", ".join(repr(n) for n in names)
    column = "column" if len(names) == 1 else "columns"
    return (
        f"unwatched: free text {column} {quoted} (most training rows hold a value no other row "
        "holds, so most served texts would count as new ones: not compared by category); the "
        "predictions are watched"
    )
