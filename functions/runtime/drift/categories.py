"""A string (categorical) column's baseline: its training categories and their counts.

Categories have no quantiles, so a string column is binned by value: one bin per category of
its training rows (the `MAX_CATEGORIES` most frequent), and one more, `(other)`, for every
value not among them: the rarer training values of a column with more categories, and a value
training never saw. A column with few categories has an empty `(other)` bin in training, so a
new category served (a plan launched after training) piles into a bin PSI floors at 1e-4 and
scores large, and its rows are counted apart as `outside`, like a number out of range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CATEGORIES = 100  # bins a column keeps: a zip code's thousands would be noise, and JSON
OTHER = "(other)"


@dataclass(frozen=True)
class CategoryBaseline:
    """One string column: its kept categories (most frequent first) and counts [K + 1], the
    last `(other)`'s."""

    name: str
    values: tuple[str, ...]
    counts: np.ndarray

    def bin(self, column: np.ndarray) -> np.ndarray:
        """Counts [K + 1] of `column`'s values on these categories, `(other)` last."""
        found, inverse = np.unique(np.asarray(column, dtype=str), return_inverse=True)
        index = {value: i for i, value in enumerate(self.values)}
        slots = np.array([index.get(v, len(self.values)) for v in found], dtype=np.int64)
        slotted = slots[inverse.ravel()] if len(found) else np.zeros(0, dtype=np.int64)
        return np.bincount(slotted, minlength=len(self.values) + 1).astype(np.int64)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "values": list(self.values), "counts": self.counts.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CategoryBaseline:
        values = tuple(str(v) for v in data["values"])  # type: ignore[attr-defined]
        counts = np.asarray(data["counts"], dtype=np.int64)
        if counts.shape != (len(values) + 1,):
            raise ValueError(f"categories of {data['name']} do not match their counts")
        return cls(str(data["name"]), values, counts)


def category_baseline(name: str, column: np.ndarray) -> CategoryBaseline:
    """The baseline of a string column's training values."""
    found, counts = np.unique(np.asarray(column, dtype=str), return_counts=True)
    order = np.argsort(-counts, kind="stable")[:MAX_CATEGORIES]
    kept = tuple(str(v) for v in found[order])
    other = int(counts.sum() - counts[order].sum())
    return CategoryBaseline(name, kept, np.append(counts[order], other).astype(np.int64))
