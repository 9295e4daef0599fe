"""Global feature importance for the model card: mean |Kernel SHAP| over test rows.

The attributions are the ones `/models/{name}/explain` serves (same background, grouping,
estimator and default coalitions: 2 x features + 2,048), for the class each row is predicted as,
or the regression output; a few rows keep it to about a second of training time. A fixed 1,024
coalitions fit a model of over 512 features from fewer equations than unknowns: a 784-feature
linear model's card ranked features with no weight first.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import InvalidInput
from functions.runtime.explain.background import Background
from functions.runtime.explain.explainer import Explainer, grouping, probabilities
from functions.runtime.explain.kernel_shap import explain_rows
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel

CARD_ROWS = 16
CARD_SECONDS = 60.0  # the explainer's time budget: a card's few rows take about a second


def global_importance(
    model_path: str,
    manifest: ModelManifest,
    background: Background,
    test_x: np.ndarray | Mapping[str, np.ndarray],
) -> tuple[list[str], np.ndarray] | None:
    """(group names, mean |attribution| per group), or None for a model explanations skip.

    `test_x`: rows of the one input, or (a table served one input per column, strings among
    them) the raw columns by input name, explained by the very Explainer `/explain` runs."""
    if isinstance(test_x, Mapping):
        return _by_columns(model_path, manifest, background, test_x)
    try:
        groups = grouping(manifest)
    except InvalidInput:
        return None
    spec = manifest.inputs[0]
    dtype = BY_NAME[spec.dtype].numpy
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    post = manifest.postprocessing
    output = post.scores_output if post is not None else manifest.outputs[0].name

    def model(rows: np.ndarray) -> np.ndarray:
        feed = rows.reshape(len(rows), *spec.shape[1:]).astype(dtype, copy=False)
        (raw,) = session.run([output], {spec.name: feed})
        value = np.asarray(raw, dtype=np.float64).reshape(len(rows), -1)
        return probabilities(value, post.activation) if post is not None else value

    rows = np.asarray(test_x[:CARD_ROWS], dtype=np.float64).reshape(min(len(test_x), CARD_ROWS), -1)
    explained = explain_rows(
        model, rows.astype(dtype), background.rows.astype(dtype), background.weights,
        groups.columns, None,
    )  # fmt: skip
    per_row = [np.abs(r.values[:, int(np.argmax(r.prediction))]) for r in explained]
    return groups.names, np.mean(per_row, axis=0)


def _by_columns(
    model_path: str,
    manifest: ModelManifest,
    background: Background,
    columns: Mapping[str, np.ndarray],
) -> tuple[list[str], np.ndarray]:
    rows = {name: value[:CARD_ROWS] for name, value in columns.items()}
    explainer = Explainer(LoadedModel(manifest, Path(model_path)), background, CARD_SECONDS)
    explained = explainer.explain(rows, None)
    per_row = [np.abs(r.values[:, int(np.argmax(r.prediction))]) for r in explained.rows]
    return explained.features, np.mean(per_row, axis=0)
