"""Held-out metrics and plots of a model brought with `aiaas publish --data FILE [--target COL]`.

The rows are run as serving runs them (`publish_evaluation`: `LoadedModel.predict`, then the
labels the predict API answers), so the card scores what callers get. Classifiers: accuracy,
macro F1 and the confusion matrix over the manifest's labels; other models: RMSE, MAE and R2 of
the first output. The plots are the trained cards' (`training.card`, torch-free), and the global
feature importance is what `/explain` serves: Kernel SHAP against a background summarised from
the same rows. A base install has no matplotlib: the metrics are kept and the card says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.comparison.truth import graph_classes, is_bool_text
from functions.runtime.comparison.values import several_metrics
from functions.runtime.drift.watched import value_output
from functions.runtime.errors import AiaasError, BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from infra.cli.explain_plot import shown_values
from infra.cli.publish_card import Scored
from infra.cli.publish_data import LabelledData, read_data
from infra.cli.publish_evaluation import check_numeric, load, served_answers, truth_labels
from infra.cli.row_cells import background_rows
from training import card
from training.calibration import calibration, not_probabilities, served_probabilities
from training.card_calibration import RELIABILITY, TITLE, reliability_plot
from training.importance import CARD_ROWS
from training.metrics import class_metrics, regression_metrics

BACKGROUND_ROWS = 2000  # rows the background is summarised from: k-means needs no more
TOP = 5  # features the card names with their importance (the plot shows 15)
EXPLAIN_SECONDS = 60.0  # the card's importance may take longer than one /explain request
NO_PLOTS = "plots need matplotlib, which is not installed: pip install 'aiaas[card]'"


def score(manifest: ModelManifest, model_path: Path, data_path: Path, target: str | None,
          folder: Path) -> Scored:  # fmt: skip
    """The held-out metrics of the model at `model_path` on `data_path`, and the card's plots."""
    data = read_data(data_path, manifest, target)
    model = load(manifest, model_path)
    folder.mkdir(parents=True, exist_ok=True)
    plots = _Plots()
    said: tuple[str, ...] = ()  # why a metric is missing
    uncalibrated = None  # why a classifier's card has no calibration
    if manifest.postprocessing is not None:
        values, finite, uncalibrated = _classifier(model, data, data_path)
        plots.draw("Confusion matrix", card.confusion_plot, values["confusion_matrix"],
                   manifest.labels, folder / "confusion.png", data_path.name)  # fmt: skip
        if "calibration" in values:
            plots.draw(TITLE, reliability_plot, values["calibration"], folder / RELIABILITY,
                       data_path.name)  # fmt: skip
    else:
        values, truth, predicted, finite = _regressor(model, data, data_path)
        plots.draw("Residuals", card.residual_plot, truth, predicted, folder / "residuals.png",
                   data.column, data_path.name)  # fmt: skip
        if values["r2"] is None:
            said = (f"no r2: every true value is {truth[0]:g}, so there is no variance for the "
                    "model to explain (it is 0/0); rmse and mae are as scored",)  # fmt: skip
    remark = _importance(model, data, folder, plots, finite)
    held_out = {"data": data_path.name, "target": data.column, **values}
    if data.total is not None and data.total > len(data.labels):  # said on the card and output
        held_out["rows_in_file"] = data.total
    if manifest.postprocessing is None:  # which output was scored, where there are several
        held_out["output"] = value_output(manifest)
    remarks = (*plots.remarks, *said, *remark)
    return Scored({"held_out": held_out}, plots.drawn, remarks, uncalibrated)


class _Plots:
    def __init__(self) -> None:
        self.drawn: dict[str, Path] = {}
        self.remarks: tuple[str, ...] = ()

    def draw(self, title: str, plot: Callable[..., Path], *args: Any) -> None:
        try:
            self.drawn[title] = plot(*args)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("matplotlib"):
                raise
            self.remarks = (NO_PLOTS,)


def _classifier(
    model: LoadedModel, data: LabelledData, path: Path
) -> tuple[dict[str, Any], np.ndarray, str | None]:
    """(the metrics, which rows have finite class scores, why there is no calibration): a row
    of NaN scores, which the predict API refuses (500), is no prediction of class 0 (its label
    was the first class's: 20 such rows of 100 read accuracy 0.93), but counted aside as a
    regressor's are. Calibration: of the probabilities the predict API answers for the rows
    scored, each row's answered class (its label) and that class's probability."""
    labels = model.manifest.labels
    answers, scores = served_answers(model, data, path)
    finite = np.isfinite(scores).all(axis=1)
    if not finite.any():
        raise BadRequest(
            f"--data {path}: the model answered NaN or infinity for every row (a missing or "
            "infinite input value it cannot score, as the predict API refuses them): fill "
            "those values in"
        )
    truth = truth_labels(data.labels, model.manifest, graph_classes(model.manifest))
    unknown = sorted(set(truth) - set(labels))
    if unknown:
        why = ""
        if is_bool_text(unknown[0]):  # two named classes: which is True cannot be told
            why = " (True/False are read as classes 0, 1 or as classes so named: which of these is True cannot be told)"
        raise BadRequest(
            f"--data {path}: {data.column!r} holds {unknown[0]!r}, which is not one of the "
            f"model's classes {list(labels)}{why}; give class names or indices "
            f"0..{len(labels) - 1}"
        )
    index = {label: i for i, label in enumerate(labels)}
    true, said = np.array([index[t] for t in truth]), np.array([index[a] for a in answers])
    values = class_metrics(true[finite], said[finite], len(labels))
    post = model.manifest.postprocessing
    assert post is not None  # a classifier's
    probs = served_probabilities(post, scores[finite])
    uncalibrated = not_probabilities(post, probs)
    if uncalibrated is None:
        values["calibration"] = calibration(probs, true[finite], said[finite])
    if not finite.all():
        values["rows_not_finite"] = int((~finite).sum())
    return values, finite, uncalibrated


def _regressor(
    model: LoadedModel, data: LabelledData, path: Path
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray]:
    check_numeric(model.manifest, data, path)
    answers, _ = served_answers(model, data, path)
    truth = np.asarray(data.labels, dtype=np.float64)
    predicted = np.asarray(answers, dtype=np.float64)
    both = np.isfinite(predicted) & np.isfinite(truth)
    finite = np.asarray(both.reshape(len(both), -1).all(axis=1))  # a forecast's: every value
    if not finite.any():
        raise BadRequest(f"--data {path}: no row has a finite label and a finite prediction")
    if truth.ndim == 2:  # several targets a row: scored as `aiaas compare` scores them
        values = {**several_metrics(truth[finite], predicted[finite]), "rows": int(finite.sum())}
        return values, truth[finite].reshape(-1), predicted[finite].reshape(-1), finite
    values = regression_metrics(truth[finite], predicted[finite])
    if np.ptp(truth[finite]) == 0:  # read r2=0, as if the model predicted the mean
        values["r2"] = None
    if not finite.all():  # NaN/inf answers are counted, not averaged into NaN metrics
        values["rows_not_finite"] = int((~finite).sum())
    return values, truth[finite], predicted[finite], finite


def _importance(
    model: LoadedModel, data: LabelledData, folder: Path, plots: _Plots, finite: np.ndarray
) -> tuple[str, ...]:
    """Mean |Kernel SHAP| of the predicted output over rows spread evenly over the file; a
    remark when skipped. Rows whose prediction is not finite (`finite` False) are no background
    and not explained: one made every attribution NaN, an empty plot and "largest x_0 nan"."""
    from functions.runtime.explain.background import summarize
    from functions.runtime.explain.explainer import Explainer, OverBudget, explained_columns
    from functions.runtime.explain.patches import input_features_axis
    from functions.runtime.image_layout import any_size_layout
    from functions.runtime.validation import validate_inputs

    manifest = model.manifest
    if any_size_layout(manifest) is not None:  # said to need a fixed row, which /explain does not
        return (
            "no feature importance: a model of any image size or window length has no patch "
            "that is the same from one input to the next to average; /explain and `aiaas "
            "explain` explain each input on its own size",
        )
    try:
        columns = explained_columns(manifest)
        kept = np.flatnonzero(finite)
        kept = kept[spread(BACKGROUND_ROWS, len(kept))]
        some = {k: v[kept] for k, v in data.inputs.items()}
        feeds = validate_inputs(manifest, some, max_batch_size=BACKGROUND_ROWS, typed=False)
        # rows with a missing value are left out, or their gaps filled where most rows have
        # one, as `aiaas baseline` does: k-means centres and SHAP's references are numbers
        rows, note = background_rows(columns.flat(feeds), columns.strings)
        background = summarize(rows, strings=columns.strings, picked=columns.picked)
        shown = columns.feeds(rows[spread(CARD_ROWS, len(rows))])
        # The default coalitions, as /explain serves them: a fixed 1,024 fit a model of over
        # 512 features from fewer equations than unknowns, and ranked weightless features first.
        explained = Explainer(model, background, EXPLAIN_SECONDS).explain(shown, None)
    except OverBudget as exc:  # was told to "send fewer rows or ask for fewer samples", and
        # AIAAS_EXPLAIN_MAX_SECONDS, which is not this limit: publish takes neither
        over = exc.reason.replace(" (AIAAS_EXPLAIN_MAX_SECONDS)", " the card allows")
        return (
            f"no feature importance: {over}explain rows once published instead, with `aiaas "
            f"baseline {manifest.name}:{manifest.version} ROWS` then `aiaas explain "
            f"{manifest.name}:{manifest.version} --file ROWS` (a lower --samples N is faster)",
        )
    except AiaasError as exc:
        return (f"no feature importance: {exc.public_message}",)
    per_row = [np.abs(r.values[:, int(np.argmax(r.prediction))]) for r in explained.rows]
    per_row = [values for values in per_row if np.isfinite(values).all()]
    if not per_row:  # a background centre the model answers NaN for
        return ("no feature importance: the attributions are not finite",)
    importance = shown_values(np.mean(per_row, axis=0))
    plots.draw("Feature importance", card.importance_plot, explained.features, importance,
               folder / "importance.png", 15, None, input_features_axis(manifest))  # fmt: skip
    left = f" ({note})" if note else ""
    top = ", ".join(
        f"{explained.features[i]} {importance[i]:.3g}" for i in np.argsort(-importance)[:TOP]
    )
    return (f"feature importance: mean |attribution| over {len(per_row)} rows, "
            f"{_coalitions(explained.parameters)}, largest {top}, the rows spread evenly over "
            f"the file; background {background.source}{left}",)  # fmt: skip


def spread(count: int, total: int) -> np.ndarray:
    """`count` indices evenly spaced over `total` rows, first and last included (all of them
    where there are no more): a held-out file sorted by its label, a date or a feature is read
    across. Its first rows were one end of it: a file sorted by label gave a linear model's
    card its second feature as the most important, from 16 rows of one class."""
    if total <= count:
        return np.arange(total)
    return np.linspace(0, total - 1, count).round().astype(np.int64)


def _coalitions(parameters: dict[str, Any]) -> str:
    """How many coalitions each row's attributions were fitted from, as the card says it."""
    count = f"{parameters['samples']:,} coalitions a row"
    return f"{count} (all of them: exact)" if parameters["exact"] else f"{count} (sampled)"
