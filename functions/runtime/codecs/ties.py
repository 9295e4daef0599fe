"""Exact ties among a classifier's best scores, settled by the model's own label output.

A TF-IDF + LogisticRegression export (skl2onnx) answers an empty text, or one with no known
word, with probabilities of exactly [0.5, 0.5] while its own `label` output (and sklearn's
`predict`, decision > 0) names the second class. Served as the first of the best scores, the
response contradicted itself, batch's `pred_label` said the same wrong class, and publish
`--data` counted such rows as misses. Where the best scores tie exactly and the model answered
its label output, the tied column that names that label wins; without one (or when it names no
tied column), the first best stays, as before. A score that is merely close never defers to the
label: SVC(probability=True)'s label may disagree with its Platt probabilities (documented).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from functions.runtime.manifest import ModelManifest


def own_labels(manifest: ModelManifest, outputs: Mapping[str, Any]) -> Any:
    """The model's own label output among `outputs` (int64 or string classes), else None."""
    post = manifest.postprocessing
    if post is None or post.label_output is None:
        return None
    return outputs.get(post.label_output)


def tie_winners(scores: Any, labels: Sequence[str], own: Any, raw: Any = None) -> dict[int, int]:
    """Row index -> the tied best column the model's own label names, for the rows whose best
    scores tie exactly; empty (the usual answer) after one vectorised check when none tie.
    `raw`: the scores output as the model answered it (numpy), checked instead of `scores`
    (lists, which numpy takes longer to read than to check) where it has a column a class: an
    activation keeps a row's order, so its best scores tie only where the model's did."""
    if own is None or (raw is not None and not _may_tie(raw)):
        return {}
    rows = np.asarray(scores)
    if rows.ndim != 2 or rows.shape[1] < 2 or not rows.shape[0]:
        return {}
    best = rows == rows.max(axis=1, keepdims=True)
    tied = np.flatnonzero(np.count_nonzero(best, axis=1) > 1)
    said = np.asarray(own).reshape(-1)
    if not tied.size or said.size != rows.shape[0]:
        return {}
    column = {label: i for i, label in enumerate(labels)}
    winners: dict[int, int] = {}
    for r in tied.tolist():
        value = said[r].item() if isinstance(said[r], np.generic) else said[r]
        if value is None:  # a row of a request that answered no label (drift's joined rows)
            continue
        c = column.get(value.decode() if isinstance(value, bytes) else str(value))
        if c is not None and best[r, c]:
            winners[r] = c
    return winners


SMALL = 64  # scores in a request checked in Python below this (numpy's calls cost more)


def _may_tie(raw: np.ndarray) -> bool:
    rows = raw if raw.ndim == 2 else raw.reshape(raw.shape[0], -1)
    if rows.shape[1] < 2 or not rows.shape[0]:  # one score a row: the served pair decides
        return True
    if rows.size <= SMALL:  # a request of a few rows: Python's lists, 0.6 us, not numpy's 4
        return any(row.count(max(row)) > 1 for row in rows.tolist())
    top = np.maximum.reduce(rows, axis=1, keepdims=True)  # a third of ndarray.max's cost
    return bool(np.count_nonzero(rows == top) > rows.shape[0])  # a row with two bests


def ranked_first(row: Sequence[float], first: int, k: int) -> list[int]:
    """`row`'s `k` best column indices, best first, with `first` (a tied best) ahead of the
    columns it ties with; the others keep the lower index first."""
    ranked = sorted(range(len(row)), key=row.__getitem__, reverse=True)
    return [first, *(c for c in ranked if c != first)][:k]
