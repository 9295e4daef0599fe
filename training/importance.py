"""Global feature importance for the model card: mean |Kernel SHAP| over test rows.

The attributions are the ones `/models/{name}/explain` serves (same background, grouping,
estimator and default coalitions: 2 x features + 2,048), for the class each row is predicted as,
or the regression output; a few rows keep it to about a second of training time. A fixed 1,024
coalitions fit a model of over 512 features from fewer equations than unknowns: a 784-feature
linear model's card ranked features with no weight first.

The cost grows with the features (a row of 1,500 took 5 s), so the rows are explained one at a
time within `CARD_SECONDS`, at least one; a row that cannot fit skips the plot (`Skipped`), never
the job: a table of 300 numbers and a text column failed the whole run after training with
/explain's "send fewer rows or ask for fewer samples", and 1,500 numbers took 80 s of a 92 s run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import InvalidInput
from functions.runtime.explain.background import Background
from functions.runtime.explain.explainer import Explainer, grouping, probabilities
from functions.runtime.explain.kernel_shap import Overrun, RowAttribution, explain_rows
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel

CARD_ROWS = 16
# The step's default budget (the spec's export.importance_seconds): a card's rows take ~1 s.
CARD_SECONDS = 20.0


class Skipped(Exception):
    """No importance plot: not one row's explanation fits in `CARD_SECONDS` (the message says
    why); the job goes on without the plot."""


def global_importance(
    model_path: str,
    manifest: ModelManifest,
    background: Background,
    test_x: np.ndarray | Mapping[str, np.ndarray],
    seconds: float = CARD_SECONDS,
) -> tuple[list[str], np.ndarray, int] | None:
    """(group names, mean |attribution| per group, rows averaged), or None for a model
    explanations skip; `Skipped` where no row fits the time budget, `seconds` (the spec's
    `export.importance_seconds`).

    `test_x`: rows of the one input, or (a table served one input per column, strings among
    them) the raw columns by input name, explained by the very Explainer `/explain` runs."""
    if isinstance(test_x, Mapping):
        return _by_columns(model_path, manifest, background, test_x, seconds)
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
    deadline = time.monotonic() + seconds
    explained: list[RowAttribution] = []
    for row in rows.astype(dtype):  # one at a time: each row's answer is the same alone
        if explained and time.monotonic() > deadline:
            break
        try:
            explained += explain_rows(
                model, row[None], background.rows.astype(dtype), background.weights,
                groups.columns, None, deadline=deadline,
            )  # fmt: skip
        except Overrun:
            break
    if not explained:
        raise Skipped(
            f"one test row's explanation over {len(groups.columns)} features ran past the "
            f"{seconds:g} s this step may take (export.importance_seconds)"
        )
    return groups.names, _mean_of_predicted(explained), len(explained)


def _by_columns(
    model_path: str,
    manifest: ModelManifest,
    background: Background,
    columns: Mapping[str, np.ndarray],
    seconds: float,
) -> tuple[list[str], np.ndarray, int]:
    """Row by row, each with what is left of the budget: the Explainer refuses a row its
    estimate says cannot fit (a 422 for /explain; here the end of the rows explained)."""
    count = min(CARD_ROWS, min(len(value) for value in columns.values()))
    explainer = Explainer(LoadedModel(manifest, Path(model_path)), background, seconds)
    deadline = time.monotonic() + seconds
    explained: list[RowAttribution] = []
    features: list[str] = []
    for i in range(count):
        left = deadline - time.monotonic()
        if explained and left <= 0:
            break
        explainer.max_seconds = left
        try:
            one = explainer.explain(
                {name: value[i : i + 1] for name, value in columns.items()}, None
            )
        except InvalidInput as exc:
            if explained:
                break
            raise Skipped(
                f"one test row's explanation over {len(columns)} columns would take over the "
                f"{seconds:g} s this step may take (export.importance_seconds)"
            ) from exc
        explained += one.rows
        features = one.features
    return features, _mean_of_predicted(explained), len(explained)


def _mean_of_predicted(explained: list[RowAttribution]) -> np.ndarray:
    """Mean |attribution| of each row's predicted output (its class, or the regression's)."""
    values = [np.abs(r.values[:, int(np.argmax(r.prediction))]) for r in explained]
    return np.asarray(np.mean(values, axis=0))
