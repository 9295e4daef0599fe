"""A table's raw columns as the network's numbers: gaps filled, text columns one-hot encoded.

Fitted on the training split only (no statistic of a validation or test row leaks into the
model): each numeric column's median fills its missing cells, each text column's categories
are those the training rows hold. The same steps are built into the exported ONNX graph
(`training.preprocess_graph`), so the served model takes the raw columns and fills and encodes
them exactly as training did. A category never seen in training encodes as all zeros.

A job whose columns are all numbers with no gaps has no `TablePrep`: its model is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.cells import DATE_TEXT
from training.errors import DataError

# A text column with more distinct values than this in the training split is refused: an id, a
# name or free text, not a category one-hot encoding can learn from.
MAX_CATEGORIES = 50


# Names of the preprocessing nodes' edges in the exported graph (`training.preprocess_graph`):
# a raw column is a graph input of its own name, so none may be called so.
GRAPH_NAMES = frozenset({"aiaas_features", "aiaas_gaps", "aiaas_medians"})
GRAPH_PREFIX = "aiaas_col"

# The network's output in the exported graph, per task (`training.export`): a raw column of
# that name would be a second edge called so (the export then failed, after training).
OUTPUT_NAMES = {"classification": "logits", "regression": "prediction"}


def graph_names(names: tuple[str, ...], outputs: Iterable[str] = ()) -> list[str]:
    """The column names that would clash with a preprocessing step's or an output's in the
    graph."""
    taken = GRAPH_NAMES | set(outputs)
    return [n for n in names if n in taken or n.startswith(GRAPH_PREFIX)]


# A column name shown bare in a list ("a, b") unless it holds what would misread there.
_PLAIN_NAME = re.compile(r"[^\s,;:'\"]([^,;:'\"]*[^\s,;:'\"])?")


def shown_names(names: Iterable[str]) -> str:
    """Column names for a message, joined by commas: a name holding a comma, a colon or a
    semicolon, a quote, blanks around it or a line break is quoted (`monthly income, €`
    otherwise reads as two columns)."""
    return ", ".join(n if _PLAIN_NAME.fullmatch(n) and n.isprintable() else repr(n) for n in names)


@dataclass(frozen=True)
class ColumnPrep:
    """One raw column: a number (its median fills gaps) or a category (one-hot)."""

    name: str
    median: float | None = None  # numeric columns
    missing: int = 0  # missing cells in the whole data set
    rows: int = 0
    categories: tuple[str, ...] = ()  # text columns, sorted

    @property
    def text(self) -> bool:
        return self.median is None

    @property
    def width(self) -> int:
        return len(self.categories) if self.text else 1


@dataclass(frozen=True)
class TablePrep:
    """The steps from raw columns (in the table's order) to the network's float32 rows."""

    columns: tuple[ColumnPrep, ...]

    @property
    def per_column(self) -> bool:
        """One graph input per raw column (a text column needs its own string input), as
        scikit-learn's ColumnTransformer exports a DataFrame; else one float input `x` [N, F]."""
        return any(c.text for c in self.columns)

    @property
    def text_indices(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c.text)

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    def transform(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows [N, C] (floats with NaN gaps, or an object array) -> float32 [N, width]."""
        parts = []
        for i, column in enumerate(self.columns):
            values = raw[:, i]
            if column.text:
                cells = np.asarray([str(v) for v in values], dtype=object)
                cats = np.asarray(column.categories, dtype=object)
                parts.append((cells[:, None] == cats[None, :]).astype(np.float32))
            else:
                numbers = values.astype(np.float32)
                filled = np.where(np.isnan(numbers), np.float32(column.median), numbers)
                parts.append(filled[:, None])
        return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)

    def feeds(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        """What the served file takes for raw rows: one input per column, or `x`."""
        if not self.per_column:
            return {"x": np.ascontiguousarray(raw, dtype=np.float32)}
        out = {}
        for i, column in enumerate(self.columns):
            values = raw[:, i : i + 1]
            if column.text:
                out[column.name] = np.asarray([[str(v)] for v in values[:, 0]], dtype=object)
            else:
                out[column.name] = np.ascontiguousarray(values, dtype=np.float32)
        return out

    def filled(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows with each numeric gap filled by its median (text kept): what explanation
        backgrounds and drift baselines are fitted on."""
        out = raw.copy()
        for i, column in enumerate(self.columns):
            if not column.text:
                numbers = out[:, i].astype(np.float64)
                out[:, i] = np.where(np.isnan(numbers), float(np.float32(column.median)), numbers)
        return out

    def to_json(self) -> dict[str, Any]:
        """What the manifest's `preprocessing.columns` says of each column (see `column_lines`)."""
        described: dict[str, Any] = {}
        for column in self.columns:
            if column.text:
                described[column.name] = {
                    "encoding": "one-hot",
                    "categories": list(column.categories),
                    "unseen": "all zeros",
                }
            else:
                described[column.name] = {
                    "missing": column.missing,
                    "rows": column.rows,
                    "filled_with": "training median",
                    "median": float(np.float32(column.median)),
                }
        return described


def column_lines(described: dict[str, Any]) -> list[str]:
    """A line per column the model fills or encodes, from `TablePrep.to_json` (a manifest's)."""
    lines = []
    for column_name, column in described.items():
        name = shown_names([column_name])
        if column.get("encoding") == "one-hot":
            lines.append(
                f"{name}: one-hot over {len(column['categories'])} categories "
                "(a category not seen in training: all zeros)"
            )
        elif column["missing"]:
            count, share = column["missing"], column["missing"] / max(column["rows"], 1)
            lines.append(
                f"{name}: {count} missing value{'s' * (count != 1)} ({share:.1%}) filled with "
                f"the training median {column['median']:.6g}"
            )
    return lines


# Said once beside the column lines: the served graph fills every numeric column alike.
SERVED_GAPS = (
    "when serving, a missing number in any numeric column (null, NaN, an empty cell) is "
    "filled with its column's training median"
)


def fit_prep(
    raw: np.ndarray,
    names: tuple[str, ...],
    text: tuple[int, ...],
    train: np.ndarray,
    output: str,
) -> TablePrep | None:
    """The steps for `raw` rows [N, C] fitted on the `train` row indices, in front of a network
    whose output is called `output`; None when every column is numeric and whole (nothing to
    do: the model stays as it always was)."""
    numeric = [i for i in range(len(names)) if i not in set(text)]
    gaps = {i: int(np.isnan(raw[:, i].astype(np.float64)).sum()) for i in numeric}
    if not text and not any(gaps.values()):
        return None
    clash = graph_names(names, [output])
    if clash:
        raise DataError(
            f"feature column{'s' * (len(clash) > 1)} {', '.join(map(repr, clash))} "
            f"{'are' if len(clash) > 1 else 'is'} named like the model's output or a step "
            f"inside the exported model graph ({output}, aiaas_features, aiaas_gaps, "
            f"aiaas_medians, aiaas_col...): rename {'them' if len(clash) > 1 else 'it'} in "
            "the file"
        )
    categories = {i: _categories(raw[train, i]) for i in text}
    refused = [(i, why) for i, why in categories.items() if isinstance(why, str)]
    if refused:  # every such column in one message: one edit of the spec, not a run each
        raise DataError(_refusal(names, refused, raw[train]))
    columns = []
    for i, name in enumerate(names):
        found = categories.get(i)
        if isinstance(found, tuple):
            columns.append(ColumnPrep(name, categories=found))
            continue
        values = raw[train, i].astype(np.float64)
        known = values[~np.isnan(values)]
        if len(known) == 0:
            raise DataError(
                f"feature column {name!r} has no value in any row of the training split; "
                "drop it with dataset.exclude"
            )
        median = float(np.float32(np.median(known)))
        columns.append(ColumnPrep(name, median=median, missing=gaps[i], rows=len(raw)))
    return TablePrep(tuple(columns))


def _refusal(names: tuple[str, ...], refused: list[tuple[int, str]], train: np.ndarray) -> str:
    """Why text columns are refused: an id, a name or free text is excluded; a date (every
    present cell one, `sold_on`) was called that too, where numbers derived from it are what a
    model can learn from (a later date is none of its training categories)."""
    dated = [(i, why) for i, why in refused if _dates(train[:, i])]
    other = [(i, why) for i, why in refused if (i, why) not in dated]
    said = []
    for group, what, edit in (
        (other, "text that is no category", "an id, a name or free text; add {it} to"),
        (
            dated,
            "dates, which are no category",
            "a later date would be none of them; derive numbers from {it} (days since a "
            "date, month, weekday) in columns of their own, or add {it} to",
        ),
    ):
        if not group:
            continue
        many = len(group) > 1
        shown = "; ".join(f"{names[i]!r} ({why})" for i, why in group)
        said.append(
            f"feature column{'s' * many} {shown} hold{'s' * (not many)} {what} (at most "
            f"{MAX_CATEGORIES} distinct values in the training split are one-hot encoded): "
            f"{edit.format(it='them' if many else 'it')} dataset.exclude "
            f"([{', '.join(names[i] for i, _ in group)}])"
        )
    return "; ".join(said)


def _dates(values: np.ndarray) -> bool:
    cells = [str(v) for v in values if str(v).strip()]
    return bool(cells) and all(DATE_TEXT.fullmatch(v) for v in cells)


def _categories(values: np.ndarray) -> tuple[str, ...] | str:
    """The sorted categories of a text column's training values, or why it has none."""
    cells = [str(v) for v in values]
    distinct = sorted(set(cells))
    if len(distinct) == len(cells) and len(cells) > 10:
        return f"a different value in each of {len(cells)} training rows, e.g. {distinct[0][:40]!r}"
    if len(distinct) > MAX_CATEGORIES:
        return f"{len(distinct)} distinct values, e.g. {distinct[0][:40]!r}"
    return tuple(distinct)
