"""The live side: histograms of served rows on a version's baseline bins, cheap per request.

A request only appends references to its (already validated) feature rows and outputs to a
buffer (~0.2 us); the rows are binned in one vectorised pass per flush or every `FOLD_ROWS`
rows, which costs well under a microsecond a row for 64 features (bench/drift_bench.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from functions.runtime.drift.baseline import DriftBaseline
from functions.runtime.manifest import ModelManifest

FOLD_ROWS = 4096  # rows held before binning (bounds memory under batch traffic)


class LiveHistograms:
    """Counts [F, B] of served rows, NaN and out-of-range counts [F], prediction counts."""

    def __init__(self, baseline: DriftBaseline, manifest: ModelManifest) -> None:
        self.baseline = baseline
        self.manifest = manifest
        spec = manifest.feature_input
        self.input = spec.name if spec is not None else manifest.inputs[0].name
        self._pending: list[tuple[np.ndarray, Mapping[str, np.ndarray]]] = []
        self._held = 0
        self.reset()

    def reset(self) -> None:
        width, bins = self.baseline.width, self.baseline.edges.shape[1] + 1
        self.rows = 0
        self.counts = np.zeros((width, bins), dtype=np.int64)
        self.nan = np.zeros(width, dtype=np.int64)
        self.below = np.zeros(width, dtype=np.int64)
        self.above = np.zeros(width, dtype=np.int64)
        prediction = self.baseline.prediction
        self.predicted = None if prediction is None else np.zeros_like(prediction.counts)

    def record(self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> None:
        """One answered request: held by reference, binned later."""
        rows = inputs.get(self.input)
        if rows is None:
            return
        self._pending.append((rows, outputs))
        self._held += len(rows)
        if self._held >= FOLD_ROWS:
            self.fold()

    def fold(self) -> None:
        """Bin every held row into the counts."""
        pending, self._pending, self._held = self._pending, [], 0
        if not pending:
            return
        width = self.baseline.width
        rows = np.concatenate(
            [np.asarray(r, dtype=np.float64).reshape(len(r), -1) for r, _ in pending]
        )
        if rows.shape[1] != width:
            return  # not the baseline's row layout (it was built for another input)
        self.rows += len(rows)
        self.counts += self.baseline.bin_rows(rows)
        self.nan += np.isnan(rows).sum(0)
        self.below += (rows < self.baseline.low).sum(0)
        self.above += (rows > self.baseline.high).sum(0)
        if self.predicted is not None and self.baseline.prediction is not None:
            values = np.concatenate([prediction_values(self.manifest, o) for _, o in pending])
            self.predicted += self.baseline.prediction.bin(values)

    def snapshot(self) -> dict[str, object] | None:
        """The counts so far as a JSON-able document (None when nothing was served); reset."""
        self.fold()
        if not self.rows:
            return None
        doc: dict[str, object] = {
            "rows": self.rows,
            "counts": self.counts.tolist(),
            "nan": self.nan.tolist(),
            "below": self.below.tolist(),
            "above": self.above.tolist(),
            "prediction": None if self.predicted is None else self.predicted.tolist(),
        }
        self.reset()
        return doc


def prediction_values(manifest: ModelManifest, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Per row: the predicted class index (classifiers) or the first output's first value."""
    post = manifest.postprocessing
    if post is not None and post.scores_output in outputs:
        raw = np.asarray(outputs[post.scores_output])
        scores = raw.reshape(len(raw), -1)
        if scores.shape[1] == 1:  # one logit (sigmoid) or one probability: the positive class
            cut = 0.0 if post.activation == "sigmoid" else 0.5
            return (scores[:, 0] > cut).astype(np.int64)
        return np.asarray(scores.argmax(1))
    raw = np.asarray(outputs[manifest.outputs[0].name], dtype=np.float64)
    return raw.reshape(len(raw), -1)[:, 0]
