"""A classifier's answer read as classes: its scores output as per-class probabilities (the
manifest's activation applied) and `{"label", "score"}` predictions, `top_k` ranked, a tie
settled by the model's own label output (ties.py). The simple codec's `predictions`, the
OIP classification extension and captured rows all read them so."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.runtime.codecs.class_names import class_names
from functions.runtime.codecs.ties import ranked_first, tie_winners
from functions.runtime.manifest import ModelManifest, Postprocessing


def class_scores(
    manifest: ModelManifest, outputs: Mapping[str, np.ndarray]
) -> list[list[float]] | None:
    """Per-class probabilities, one list per row, for classifiers; else None."""
    post = manifest.postprocessing
    if post is None or post.scores_output not in outputs:
        return None
    return probabilities(post, outputs[post.scores_output])


def probabilities(post: Postprocessing, raw: np.ndarray) -> list[list[float]]:
    """The scores output `raw` as the per-class probabilities served (`post`'s activation), one
    list a row: what a caller reads as a score, and what a card's calibration is measured on."""
    rows = raw if raw.ndim == 2 else raw.reshape(raw.shape[0], -1)
    if post.activation == "softmax":
        return softmax(rows)
    if post.activation == "sigmoid":
        probs = 1.0 / (1.0 + np.exp(-rows.astype(np.float64)))
    else:
        probs = rows.astype(np.float64)
    if probs.shape[1] == 1:  # one score: the positive class of a binary classifier
        probs = np.concatenate([1.0 - probs, probs], axis=1)
    return probs.tolist()  # type: ignore[no-any-return]


# Up to this many scores plain Python beats numpy's per-call overhead (~1.5 us vs ~3.5 us).
_SMALL = 256


def softmax(rows: np.ndarray, exp: Any = math.exp) -> list[list[float]]:
    """Each row's scores as probabilities (plain Python for few, numpy for many)."""
    if rows.size <= _SMALL:  # `exp` bound once: a global and an attribute lookup per value less
        result = []
        for row in rows.tolist():
            top = max(row)
            exps = [exp(v - top) for v in row]
            total = sum(exps)
            result.append([v / total for v in exps])
        return result
    shifted = rows.astype(np.float64)
    shifted -= shifted.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted.tolist()  # type: ignore[no-any-return]


def predictions(
    manifest: ModelManifest,
    scores: list[list[float]],
    top_k: int,
    own: Any = None,
    raw: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """`{"label", "score"}` per row, plus `top_k` ranked alternatives when more than one is asked.
    `own`: the model's own label output, which settles a row whose best scores tie (ties.py);
    `raw`: the scores output the model answered, where a tie is looked for first."""
    classes = len(scores[0]) if scores else 0
    labels = class_names(manifest, classes) if scores else ()
    k = max(1, min(top_k, classes))
    rows: list[dict[str, Any]] = []
    for row in scores:
        if k == 1:
            best = row.index(max(row))  # the first best, as max(range, key=...) at a third the cost
            rows.append({"label": labels[best], "score": row[best]})
            continue
        ranked = sorted(range(classes), key=row.__getitem__, reverse=True)[:k]
        top = [{"label": labels[c], "score": row[c]} for c in ranked]
        rows.append({**top[0], "top_k": top})
    if own is None:  # no label output to settle a tie with: the first best stays
        return rows
    for r, c in tie_winners(scores, labels, own, raw).items():  # {} unless a row's best scores tie
        top = [{"label": labels[i], "score": scores[r][i]} for i in ranked_first(scores[r], c, k)]
        rows[r] = top[0] if k == 1 else {**top[0], "top_k": top}
    return rows
