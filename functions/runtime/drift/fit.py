"""Fit a version's drift baseline: bin its training rows and the model's own predictions."""

from __future__ import annotations

import numpy as np

from functions.runtime.drift.baseline import (
    DEFAULT_BINS,
    DriftBaseline,
    PredictionBaseline,
    build,
    label_shares,
    value_bins,
)
from functions.runtime.drift.live import prediction_values
from functions.runtime.errors import BadRequest
from functions.runtime.model import LoadedModel


def fit(model: LoadedModel, rows: np.ndarray, bins: int = DEFAULT_BINS) -> DriftBaseline:
    """The baseline of `rows` [N, F] (training data) for `model`, predictions included."""
    manifest = model.manifest
    spec = manifest.feature_input or manifest.inputs[0]
    if not spec.dtype.startswith(("float", "int", "uint")):
        raise BadRequest(f"{model.ref} reads {spec.dtype}: drift baselines are for numeric rows")
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    width = rows.shape[1]
    names = manifest.features or tuple(f"x_{i}" for i in range(width))
    return build(rows, tuple(names), _predictions(model, rows, spec.dtype), bins)


def _predictions(model: LoadedModel, rows: np.ndarray, dtype: str) -> PredictionBaseline:
    manifest = model.manifest
    post = manifest.postprocessing
    output = post.scores_output if post is not None else manifest.outputs[0].name
    spec = manifest.feature_input or manifest.inputs[0]
    shape = (-1, *spec.shape[1:])
    values = np.concatenate(
        [
            prediction_values(
                manifest,
                model.predict({spec.name: chunk.astype(dtype).reshape(shape)})[output],
            )
            for chunk in np.array_split(rows, max(1, -(-len(rows) // model.max_batch_size)))
        ]
    )
    if post is None:
        return value_bins(values)
    classes = int(values.max()) + 1 if len(values) else 0
    labels = manifest.labels or tuple(str(i) for i in range(max(classes, 2)))
    return label_shares(values, tuple(labels))
