"""A string (categorical) column's baseline: its training categories and their counts.

Categories have no quantiles, so a string column is binned by value: one bin per category of
its training rows (the `MAX_CATEGORIES` most frequent), one, `(other)`, for the rarer training
values of a column with more categories (their names kept, up to `MAX_RARE`), and one, `(new)`,
for a value training never saw (a plan launched after training). Training never fills `(new)`
(unless a column had more than `MAX_CATEGORIES + MAX_RARE` values), so a new category served
piles into a bin PSI floors at 1e-4 and scores large, and its rows are counted apart as
`outside`, like a number out of range; rows moving between common and rare categories show as
`(other)`'s share changing. Not seen: a shift among the rare categories themselves (one rare
value traded for another), as they share one bin.

Free text is no category: a column most of whose training rows hold a value no other row holds
(a TF-IDF pipeline's text) is not watched by category (`free_text`). By Good-Turing, the share
of rows of the same source holding a value training never saw is about the share of training
rows holding a value seen once; over half, same-source traffic puts over half its rows in
`(new)`, whose PSI term alone (0.5 ln(0.5 / 1e-4) = 4.3) is twenty times the 0.2 threshold:
the column would read DRIFT on every window whatever happened, and `--fail-on-drift` fail
always. The predictions (and any other column) still watch such a model.

A baseline written before `(new)` existed has no `rare` list: its `(other)` bin takes both the
rare and the new values, as it did (its counts have one bin fewer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_CATEGORIES = 100  # bins a column keeps: a zip code's thousands would be noise, and JSON
MAX_RARE = 10_000  # rarer training values known by name (~100-200 kB of baseline at most)
FREE_TEXT_SHARE = 0.5  # of training rows holding a value no other row holds: free text above
OTHER = "(other)"
NEW = "(new)"


@dataclass(frozen=True)
class CategoryBaseline:
    """One string column: its kept categories (most frequent first), the rarer training
    values (`rare`; None in a baseline from before `(new)`), and counts [K + 2]: `(other)`'s
    then `(new)`'s last ([K + 1] without `rare`)."""

    name: str
    values: tuple[str, ...]
    counts: np.ndarray
    rare: tuple[str, ...] | None = None
    _slots: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        slots = {value: i for i, value in enumerate(self.values)}
        slots.update(dict.fromkeys(self.rare or (), len(self.values)))
        object.__setattr__(self, "_slots", slots)  # built once: bin() runs at every fold

    @property
    def unseen(self) -> int:
        """The bin of a value not among `values` or `rare`: `(new)`, or `(other)` before it."""
        return len(self.values) + (self.rare is not None)

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
        return {**doc, "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CategoryBaseline:
        values = tuple(str(v) for v in data["values"])  # type: ignore[attr-defined]
        raw = data.get("rare")
        rare = None if raw is None else tuple(str(v) for v in raw)  # type: ignore[attr-defined]
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.shape != (len(values) + 1 + (rare is not None),):
            raise ValueError(f"categories of {data['name']} do not match their counts")
        return cls(str(data["name"]), values, counts, rare)


def category_baseline(name: str, column: np.ndarray) -> CategoryBaseline:
    """The baseline of a string column's training values."""
    found, counts = np.unique(np.asarray(column, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    kept, rare = order[:MAX_CATEGORIES], order[MAX_CATEGORIES : MAX_CATEGORIES + MAX_RARE]
    beyond = int(counts.sum() - counts[kept].sum() - counts[rare].sum())
    binned = np.append(counts[kept], [counts[rare].sum(), beyond]).astype(np.int64)
    return CategoryBaseline(
        name, tuple(str(v) for v in found[kept]), binned, tuple(str(v) for v in found[rare])
    )


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
