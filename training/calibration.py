"""Whether a classifier's probabilities mean what they say: top-label calibration of held-out rows.

A card's accuracy says how often the model is right, not whether its 0.9 is right nine times in
ten: a model can be accurate and over-confident (its 0.9s right 60% of the time), and a caller
thresholding on the score is then misled. The rows' probabilities are those serving answers
(`functions.runtime.codecs.class_scores.probabilities`: the manifest's activation applied to
the served file's scores output), and each row's top label (the class served, its probability
the confidence) falls into one of BINS equal-width confidence bins. Torch-free (numpy): `aiaas
publish --data` measures it for a model from any exporter, `aiaas show` prints its line.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from functions.runtime.codecs.class_scores import probabilities
from functions.runtime.manifest import ModelManifest, Postprocessing

BINS = 10  # equal-width confidence bins: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]
ROUGH_BELOW = 100  # fewer held-out rows than this: a few rows a bin, the estimate is rough
# How far a row of probabilities may sum from 1 (float32 softmax outputs sum to 1 +- 1e-6).
SUM_TOLERANCE = 1e-3


def served_probabilities(post: Postprocessing, scores: np.ndarray) -> np.ndarray:
    """[rows, classes] probabilities of the scores output `scores`, as the predict API answers
    them (its code, not a second softmax)."""
    return np.asarray(probabilities(post, np.asarray(scores)), dtype=np.float64)


def not_probabilities(post: Postprocessing, probs: np.ndarray) -> str | None:
    """Why `probs` are no probabilities to calibrate (None where they are): activation `none`
    passes the model's scores through, and a scores output of decision values (LinearSVC's,
    a margin) is served as they are, outside 0..1 or rows not summing to 1."""
    inside = bool(((probs >= 0) & (probs <= 1)).all())
    # a sigmoid's per-class scores (one-vs-rest) are each a probability but need not sum to 1
    summed = post.activation == "sigmoid" or bool(
        (np.abs(probs.sum(axis=1) - 1) <= SUM_TOLERANCE).all()
    )
    if inside and summed:
        return None
    how = "values outside 0..1" if not inside else "rows not summing to 1"
    return (
        f"output {post.scores_output!r} (activation {post.activation}) holds scores that are no "
        f"probabilities ({how}: decision values or margins), so whether its probabilities mean "
        "what they say cannot be measured; publish it with the exporter's probability output "
        "(or --activation softmax for logits) to have it"
    )


def calibration(
    probs: np.ndarray, truth: np.ndarray, predicted: np.ndarray | None = None
) -> dict[str, Any]:
    """Top-label calibration of rows of probabilities `probs` [rows, classes] against class
    indices `truth`; `predicted`: the class each row was answered (default: its most probable).

    ECE: |accuracy - mean confidence| of each bin weighted by its share of the rows; max: the
    largest such gap over bins with rows; Brier: the mean over rows of the squared distance
    between the probability vector and the one-hot truth (0 perfect, 2 worst). Per bin: its
    edges, rows, mean confidence and accuracy (null where it has no row). Plain JSON numbers."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    answered = probs.argmax(axis=1) if predicted is None else np.asarray(predicted)
    confidence = probs[np.arange(len(probs)), answered]
    right = (answered == truth).astype(np.float64)
    # bin i holds confidences in [i/BINS, (i+1)/BINS); a confidence of 1.0 the last bin
    which = np.clip((confidence * BINS).astype(np.int64), 0, BINS - 1)
    rows = np.bincount(which, minlength=BINS)
    sums = np.bincount(which, weights=confidence, minlength=BINS)
    hits = np.bincount(which, weights=right, minlength=BINS)
    full = rows > 0
    mean_confidence = np.divide(sums, rows, out=np.zeros(BINS), where=full)
    accuracy = np.divide(hits, rows, out=np.zeros(BINS), where=full)
    gaps = np.abs(accuracy - mean_confidence)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(probs)), truth] = 1.0
    return {
        "bins": BINS,
        "rows": len(probs),
        "ece": float((rows * gaps).sum() / max(len(probs), 1)),
        "max_error": float(gaps[full].max()) if full.any() else 0.0,
        "brier": float(((probs - onehot) ** 2).sum(axis=1).mean()) if len(probs) else 0.0,
        "per_bin": [
            {
                "low": i / BINS,
                "high": (i + 1) / BINS,
                "rows": int(rows[i]),
                "confidence": float(mean_confidence[i]) if full[i] else None,
                "accuracy": float(accuracy[i]) if full[i] else None,
            }
            for i in range(BINS)
        ],
    }


def with_calibration(
    manifest: ModelManifest, scores: np.ndarray, truth: np.ndarray
) -> ModelManifest:
    """`manifest` with its test metrics' `calibration`, measured on `scores`, the served file's
    scores output for the test rows (those its accuracy is scored from); as it is for a
    model that is no classifier, or whose scores serving does not answer as probabilities."""
    post = manifest.postprocessing
    test = manifest.metrics.get("test")
    if post is None or not isinstance(test, dict):
        return manifest
    probs = served_probabilities(post, scores)
    if not_probabilities(post, probs) is not None:
        return manifest
    metrics = {**manifest.metrics, "test": {**test, "calibration": calibration(probs, truth)}}
    return replace(manifest, metrics=metrics)


def calibration_text(values: dict[str, Any], rows_named: str = "test rows") -> str:
    """`ECE 0.034, max 0.12 over 10 bins of 300 test rows; Brier 0.081`, as the card and
    `aiaas show` say it; with fewer than ROUGH_BELOW rows, that the estimate is rough."""
    line = (
        f"ECE {values['ece']:.2g}, max {values['max_error']:.2g} over {values['bins']} bins of "
        f"{values['rows']} {rows_named}; Brier {values['brier']:.2g}"
    )
    if values["rows"] < ROUGH_BELOW:
        line += f" (a rough estimate: fewer than {ROUGH_BELOW} rows, a few a bin)"
    return line
