"""From raw data to training-ready splits: checks, label encoding, deterministic splits, stats.

Everything the manifest later needs for drift checks (fingerprint, per-feature statistics,
class balance) is computed here, once, from the same arrays the model trains on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.datasets import RawData
from training.errors import DataError
from training.spec import JobSpec
from training.table_prep import OUTPUT_NAMES, TablePrep, fit_prep
from training.targets import (
    class_labels,
    need_two_classes,
    need_two_values,
    regression_target,
)
from training.text import Vocabulary, build_vocabulary

# Per-row rank each recipe kind needs: tabular [F], image [C, H, W], sequence [T, F].
ROW_RANK = {"tabular": 1, "image": 3, "sequence": 2}


@dataclass(frozen=True)
class Split:
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class PreparedData:
    """Train/validation/test splits plus what the manifest says about the data."""

    task: str
    train: Split
    validation: Split
    test: Split
    row_shape: tuple[int, ...]
    labels: tuple[str, ...] = ()
    vocabulary: Vocabulary | None = None
    # Text models: the test split's raw texts (the parity gate tokenizes them as serving does).
    test_texts: tuple[str, ...] = ()
    summary: dict[str, Any] = field(default_factory=dict)
    # A table with text columns or gaps: how its raw columns become the network's numbers
    # (inside the exported graph too), and the raw rows of the training and test splits.
    table: TablePrep | None = None
    raw_train: np.ndarray | None = None
    raw_test: np.ndarray | None = None

    def served_test(self, rows: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
        """The first `rows` test rows as the served file takes them: raw columns when its
        graph fills and encodes them, else the network's own rows."""
        if self.table is None or self.raw_test is None:
            return self.test.x[:rows]
        return self.table.feeds(self.raw_test[:rows])

    def served_train(self) -> np.ndarray:
        """Training rows as the served model's flat rows, gaps filled (the explanation
        background: Kernel SHAP's reference values must be numbers, and a filled gap is what
        the served graph computes on): raw columns when it takes one input per column."""
        if self.table is None or self.raw_train is None or not self.table.per_column:
            return self.train.x
        return self.table.filled(self.raw_train)

    def raw_served_train(self) -> np.ndarray:
        """Training rows as they are served, gaps kept (NaN): the drift baseline, which counts
        a column's missing values as served ones are counted (filled, they were a spike at the
        median and no missing count, so serving the training rows themselves showed drift)."""
        if self.table is None or self.raw_train is None:
            return self.train.x
        return self.raw_train


def prepare(raw: RawData, spec: JobSpec, kind: str) -> PreparedData:
    """Check, encode and split `raw` for `spec`; DataError on anything training cannot use."""
    if len(raw.y) < 10:
        raise DataError(f"data set {raw.source} has {len(raw.y)} rows; at least 10 are needed")
    labels, y = _encode_target(raw, spec.task)
    train_idx, val_idx, test_idx = split_indices(len(y), y if labels else None, spec)
    vocabulary = None
    table = None
    if kind != "text" and (raw.text_columns or _has_gaps(raw.x)):
        table = _fit_table(raw, spec, kind, train_idx)
        x = table.transform(raw.x)
    elif kind == "text":
        params = spec.recipe.params
        vocabulary = build_vocabulary(
            raw.x[train_idx], min_count=params["min_count"], max_length=params["max_length"]
        )
        x = vocabulary.encode(list(raw.x), length=params["max_length"])
    else:
        x = _shape_rows(raw, spec, kind)
    data = PreparedData(
        task=spec.task,
        train=Split(x[train_idx], y[train_idx]),
        validation=Split(x[val_idx], y[val_idx]),
        test=Split(x[test_idx], y[test_idx]),
        row_shape=tuple(x.shape[1:]),
        labels=labels,
        vocabulary=vocabulary,
        test_texts=tuple(str(t) for t in raw.x[test_idx]) if vocabulary is not None else (),
        table=table,
        raw_train=raw.x[train_idx] if table is not None else None,
        raw_test=raw.x[test_idx] if table is not None else None,
    )
    data.summary.update(_summary(raw, x, y, labels, (train_idx, val_idx, test_idx), table))
    return data


def _has_gaps(x: np.ndarray) -> bool:
    return x.dtype.kind == "f" and bool(np.isnan(x).any())


def _fit_table(raw: RawData, spec: JobSpec, kind: str, train_idx: np.ndarray) -> TablePrep:
    if kind != "tabular" or spec.dataset.input_shape is not None:
        held = "text columns" if raw.text_columns else "missing values"
        raise DataError(
            f"{raw.source} has {held}; recipe {spec.recipe.name!r} reads whole numbers rows "
            "only (the tabular recipes linear, logistic and mlp fill gaps and encode text "
            "columns): fill them in, or drop the columns with dataset.exclude"
        )
    table = fit_prep(raw.x, raw.feature_names, raw.text_columns, train_idx, OUTPUT_NAMES[spec.task])
    assert table is not None  # text columns or gaps: there is something to do
    return table


def _encode_target(raw: RawData, task: str) -> tuple[tuple[str, ...], np.ndarray]:
    if task == "regression":
        y = regression_target(raw.y, raw.target_name, raw.target_noun, raw.places)
        need_two_values(y, raw.target_name)
        return (), y
    labels, y = class_labels(raw.y, raw.target_name, raw.places)
    need_two_classes(labels, raw.target_name)
    return labels, y


def split_indices(
    rows: int, classes: np.ndarray | None, spec: JobSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Deterministic train/validation/test row indices; stratified by class when given."""
    rng = np.random.default_rng(spec.seed)
    if classes is None:
        groups = [np.arange(rows)]
    else:
        groups = [np.flatnonzero(classes == c) for c in np.unique(classes)]
    parts: list[list[np.ndarray]] = [[], [], []]
    for group in groups:
        shuffled = rng.permutation(group)
        n_val = round(len(group) * spec.validation_split)
        n_test = round(len(group) * spec.test_split)
        cuts = [len(group) - n_val - n_test, len(group) - n_test]
        for part, chunk in zip(parts, np.split(shuffled, cuts), strict=True):
            part.append(chunk)
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    if len(train) == 0:
        raise DataError(
            "the training split is empty: validation_split and test_split take every row; "
            "lower them"
        )
    for name, idx in (("validation", val), ("test", test)):
        if len(idx) == 0:
            raise DataError(f"the {name} split is empty: {_split_advice(groups, name)}")
    return train, val, test


def _split_advice(groups: list[np.ndarray], name: str) -> str:
    """Why a held-out split came out empty and which spec field to raise."""
    smallest = min(len(g) for g in groups)
    held = "rows" if len(groups) == 1 else f"rows in the smallest class of {len(groups)}"
    return f"{smallest} {held} give it none; add rows or raise {name}_split"


def _shape_rows(raw: RawData, spec: JobSpec, kind: str) -> np.ndarray:
    x = raw.x
    shape = spec.dataset.input_shape
    if shape is not None:
        width = int(np.prod(x.shape[1:]))
        if int(np.prod(shape)) != width:
            raise DataError(
                f"dataset.input_shape {list(shape)} holds {int(np.prod(shape))} values; "
                f"each row of {raw.source} has {width}"
            )
        _not_reordered(raw, tuple(shape))
        x = x.reshape(len(x), *shape)
    if x.ndim - 1 != ROW_RANK[kind]:
        want = {
            "tabular": "[features]",
            "image": "[channels, height, width]",
            "sequence": "[steps, features]",
        }[kind]
        raise DataError(
            f"recipe {spec.recipe.name!r} needs rows shaped {want}; rows of {raw.source} are "
            f"{list(x.shape[1:])} (set dataset.input_shape)"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _not_reordered(raw: RawData, shape: tuple[int, ...]) -> None:
    """Refuse an input_shape that orders the rows' own axes otherwise: a reshape keeps the
    values' order, so channel-last images [H, W, C] read as [C, H, W] were scrambled pixels,
    trained and published with no word."""
    rows = tuple(int(n) for n in raw.x.shape[1:])
    if len(rows) < 2 or rows == shape or sorted(rows) != sorted(shape):
        return
    said = f"dataset.input_shape {list(shape)} reorders the rows of {raw.source}, which are {list(rows)}"
    if len(rows) == 3 and shape == (rows[2], rows[0], rows[1]):
        raise DataError(
            f"{said}: x looks channel-last [height, width, channels], and a reshape would "
            "scramble its pixels, not move its channels first; save x.transpose(0, 3, 1, 2) "
            f"(rows {list(shape)}), or give dataset.input_shape in the array's own order"
        )
    raise DataError(
        f"{said}: a reshape keeps the values' order, it does not transpose axes; save x with "
        "its axes in that order (numpy.transpose), or give dataset.input_shape in the array's "
        "own order"
    )


def channel_last_warning(raw: RawData, spec: JobSpec, kind: str) -> str | None:
    """Images that look channel-last ([N, H, W, C] with 1, 3 or 4 channels), read as given, as
    channels-first [C, H, W]: a cnn then took 8x8 RGBA pictures as 8 channels of 8x4 pixels."""
    x = raw.x
    if kind != "image" or spec.dataset.input_shape is not None or x.ndim != 4:
        return None
    if x.shape[3] not in (1, 3, 4) or x.shape[1] <= 4:
        return None
    channels, height, width = (int(n) for n in x.shape[1:])
    return (
        f"{raw.source} x is {list(x.shape)}, read as channels-first [channels, height, width]: "
        f"{channels} channels of {height}x{width} pixels; if it holds channel-last images "
        f"[height, width, channels], save x.transpose(0, 3, 1, 2)"
    )


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the encoded arrays (shape, dtype and bytes): equal arrays, equal fingerprint.
    Not the file's identity (`RawData.file_sha256` is): names and spellings are not in the
    arrays, and a table's gaps are filled with its training split's medians (seed-dependent)."""
    digest = hashlib.sha256()
    for array in (x, y):
        digest.update(f"{array.dtype.str}{list(array.shape)}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _summary(
    raw: RawData,
    x: np.ndarray,
    y: np.ndarray,
    labels: tuple[str, ...],
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    table: TablePrep | None,
) -> dict[str, Any]:
    train = x[splits[0]]
    if table is not None:  # per raw column: numbers (gaps filled) and category shares
        stats = _column_stats(table.filled(raw.x[splits[0]]), table)
    elif x.dtype.kind == "f":
        stats = _feature_stats(train, raw.feature_names)
    else:
        stats = _token_stats(train)
    summary: dict[str, Any] = {
        "source": raw.source,
        "fingerprint": fingerprint(x, y),
        **(
            {"file_sha256": raw.file_sha256, "file_bytes": raw.file_bytes}
            if raw.file_sha256
            else {}
        ),
        "rows": len(y),
        "splits": {
            name: len(idx)
            for name, idx in zip(("train", "validation", "test"), splits, strict=True)
        },
        "feature_stats": stats,
    }
    if labels:
        counts = np.bincount(y, minlength=len(labels))
        summary["class_balance"] = {
            label: round(float(c) / len(y), 4) for label, c in zip(labels, counts, strict=True)
        }
    else:
        summary["target_stats"] = _stats(y.astype(np.float64))
    return summary


def _column_stats(train: np.ndarray, table: TablePrep) -> dict[str, dict[str, float]]:
    stats = {}
    for i, column in enumerate(table.columns):
        if column.text:
            cells = [str(v) for v in train[:, i]]
            stats[column.name] = {
                c: round(cells.count(c) / len(cells), 4) for c in column.categories
            }
        else:
            stats[column.name] = _stats(train[:, i].astype(np.float64))
    return stats


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _feature_stats(train: np.ndarray, names: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Per input position statistics of the training split (what the model saw)."""
    flat = train.reshape(len(train), -1).astype(np.float64)
    return {name: _stats(flat[:, i]) for i, name in enumerate(names)}


def _token_stats(train: np.ndarray) -> dict[str, dict[str, float]]:
    lengths = (train != 0).sum(axis=1).astype(np.float64)
    unknown = float((train == 1).sum()) / max(float(lengths.sum()), 1.0)
    return {"tokens_per_text": _stats(lengths), "unknown_token_rate": {"mean": unknown}}
