"""The model card: Markdown plus PNG plots, stored beside the artifact under `card/`.

Torch-free (numpy and matplotlib): `aiaas publish` draws the same plots for a model brought from
any exporter (infra/cli/publish_card.py), and a serving install imports no torch to do it.
"""

from __future__ import annotations

import itertools
import textwrap
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.runtime.explain.patches import PATCH_NAME
from functions.runtime.metric_text import metric_name, metrics_text
from training.card_calibration import calibration_lines
from training.card_lines import change_lines, class_lines, quantization_line, settings_line
from training.card_residuals import pyplot as _pyplot
from training.card_residuals import residual_figure as residual_figure  # the card's plots
from training.card_residuals import residual_plot as residual_plot
from training.card_text import md_code, md_paragraphs, md_text
from training.fonts import save
from training.provenance import provenance_line
from training.table_prep import SERVED_GAPS, column_lines, shown_names

if TYPE_CHECKING:  # the plots are torch-free: `aiaas publish` draws them for any ONNX model
    from training.trainer import EpochRecord


def kept_text(training: dict[str, Any]) -> str:
    """`kept the weights of epoch 27 (best val_accuracy, then val_loss)`: which epoch's weights
    were exported, and why (a later epoch's were thrown away unsaid)."""
    why = training.get("kept_because")
    return f"kept the weights of epoch {training['best_epoch']}" + (f" ({why})" if why else "")


def loss_plot(
    history: list[EpochRecord],
    monitor: str,
    path: Path,
    best_epoch: int | None = None,
    loss: str = "loss",
) -> Path:
    """Training and validation loss per epoch, plus the monitored validation metric."""
    plt = _pyplot()
    fig = loss_figure(history, monitor, best_epoch, loss)
    save(fig, path, dpi=90)
    plt.close(fig)
    return path


def loss_figure(
    history: list[EpochRecord], monitor: str, best_epoch: int | None = None, loss: str = "loss"
) -> Any:
    """The loss plot's figure (matplotlib), epochs ticked as whole numbers, the epoch whose
    weights were kept marked (the card's metrics are that epoch's, not the last one's);
    `loss` names what the loss is (a regression's 0.46 reads as nothing beside rmse 52)."""
    from matplotlib.ticker import MaxNLocator

    epochs = [r.epoch for r in history]
    fig, (left, right) = _pyplot().subplots(1, 2, figsize=(9, 3.5))
    left.plot(epochs, [r.train_loss for r in history], label="train")
    left.plot(epochs, [r.val_loss for r in history], label="validation")
    left.set(xlabel="epoch", ylabel=loss, title="Loss")
    right.plot(epochs, [r.val_metric for r in history], color="tab:green")
    shown = metric_name(monitor)
    right.set(xlabel="epoch", ylabel=loss if monitor == "loss" else shown)
    right.set_title(f"Validation {shown}")
    for axes in (left, right):  # a few epochs were ticked 1.5, 2.5: no such epoch exists
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch is not None:
            axes.axvline(best_epoch, color="gray", linestyle=":", label=f"kept: epoch {best_epoch}")
    left.legend(fontsize=8)
    if best_epoch is not None:
        right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def tick_labels(labels: tuple[str, ...] | list[str], width: int = 18) -> list[str]:
    """Class names as ticks: wrapped at `width` characters, two lines at most ("..." where cut);
    a 45-character class name pushed the matrix and its axis titles out of the figure. Names
    cut alike keep their ends instead (`Electronics >` / `...Laptops > Gaming`): three
    categories of one path were three ticks `Electronics > Computers >...`, rows no one could
    tell apart; names that still read alike are numbered by their place."""
    shown = [_cut(str(label), width) for label in labels]
    alike = Counter(shown)
    shown = [
        _ends(str(label), width) if alike[tick] > 1 and tick != str(label) else tick
        for label, tick in zip(labels, shown, strict=True)
    ]
    alike = Counter(shown)
    return [f"{tick} ({i})" if alike[tick] > 1 else tick for i, tick in enumerate(shown)]


def _cut(label: str, width: int) -> str:
    lines = textwrap.wrap(label, width) or [""]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: width - 3] + "..."]
    return "\n".join(lines)


def _ends(label: str, width: int) -> str:
    """The first wrapped line and the last `width` characters: where names of one prefix differ."""
    head = (textwrap.wrap(label, width) or [""])[0]
    return f"{head}\n...{label[len(head) :][-(width - 3) :].lstrip()}"


def label_room(ticks: list[str]) -> float:
    """Inches the longest tick line needs beside the axes (about 0.08 in a character)."""
    return 0.08 * max((len(line) for t in ticks for line in t.split("\n")), default=1)


def confusion_plot(
    matrix: list[list[int]], labels: tuple[str, ...], path: Path, split: str = "test"
) -> Path:
    """The confusion matrix of `split`'s rows: rows are true classes, columns predictions."""
    fig = confusion_figure(matrix, labels, split)
    save(fig, path, dpi=90)
    _pyplot().close(fig)
    return path


def confusion_figure(matrix: list[list[int]], labels: tuple[str, ...], split: str = "test") -> Any:
    """The confusion matrix's figure, counts in the cells, grown with the classes' names."""
    counts = np.asarray(matrix)
    ticks = tick_labels(labels)
    size = max(3.5, 0.45 * len(labels) + 2) + label_room(ticks)
    fig, ax = _pyplot().subplots(figsize=(size, size))
    ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(labels)), ticks, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), ticks)
    for (i, j), value in np.ndenumerate(counts):
        if value == 0 and len(labels) > 10:  # a sea of zeros hides the mistakes
            continue
        color = "white" if value > counts.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=color, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(f"Confusion matrix\n{split}, {int(counts.sum())} rows (counts)", fontsize=10)
    fig.tight_layout()
    return fig


def _metric_rows(metrics: dict[str, Any]) -> list[str]:
    rows = []
    for split, values in metrics.items():
        rows.append(f"| {md_text(split)} | {metrics_text(values)} |")
    return rows


def _data_identity(dataset: dict[str, Any]) -> str:
    """The file's own sha256 (what `sha256sum` prints of it) where the run read one, then the
    fingerprint of the encoded rows, which no tool outside aiaas recomputes."""
    encoded = f"fingerprint of the encoded rows `{dataset['fingerprint'][:16]}...`"
    if not dataset.get("file_sha256"):
        return encoded
    return f"file sha256 `{dataset['file_sha256']}` ({dataset['file_bytes']} bytes); {encoded}"


def write_card(path: Path, facts: dict[str, Any], plots: dict[str, str]) -> Path:
    """The Markdown card; `facts` is the manifest's content, `plots` maps titles to file names.
    What the spec and the data named (description, columns, classes, the data's path) reads as
    itself (`card_text`): no HTML, links or line breaks of theirs."""
    training = facts["training"]
    dataset = facts["dataset"]
    description = md_paragraphs(facts.get("description") or "")
    recipe = training["recipe"]
    lines = [
        f"# {md_text(facts['name'])}:{md_text(facts['version'])}",
        "",
        *([*description, ""] if description else []),
        f"- Task: {facts['task']}; recipe {md_code(recipe['name'])} {md_text(recipe['params'])}",
        f"- Data: {md_code(dataset['source'])}, {dataset['rows']} rows "
        f"(train/validation/test {'/'.join(str(v) for v in dataset['splits'].values())}), "
        f"{_data_identity(dataset)}",
        f"- Trained on {training['device']} for {training['epochs_run']} epochs "
        f"({training['seconds_per_epoch']:.3f} s/epoch); {kept_text(training)}",
        *(md_text(line) for line in provenance_line(training)),
        *_feature_lines(facts),
        md_text(settings_line(training)),
        f"- Input: {md_text(', '.join(facts['inputs']))}; "
        f"output: {md_text(', '.join(facts['outputs']))}",
        *_column_lines(facts.get("preprocessing") or {}),
        "",
        *change_lines((facts.get("extras") or {}).get("changes")),
        *class_lines(facts.get("classes") or []),
        "## Metrics",
        "",
        "| split | metrics |",
        "|---|---|",
        *_metric_rows(facts["metrics"]),
        "",
        *calibration_lines((facts["metrics"].get("test") or {}).get("calibration")),
        "## Export",
        "",
        f"- ONNX opset {facts['opset']}, {facts['size']} bytes; parity torch vs onnxruntime: "
        f"max abs diff {facts['parity']['max_abs_diff']:.3g} on {facts['parity']['rows']} held-out rows",
        f"- int8 quantization: {md_text(quantization_line(facts['quantization']))}",
        "",
        *importance_lines(facts.get("importance")),
        "## Plots",
        "",
        *[f"![{title}]({name})" for title, name in plots.items()],
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _feature_lines(facts: dict[str, Any]) -> list[str]:
    """The columns read, the target and what was dropped: what a run of iterations varies."""
    names = list((facts.get("preprocessing") or {}).get("feature_names") or facts["features"])
    dataset = facts["training"].get("dataset") or {}
    if not names or dataset.get("text_column"):
        return []
    shown = (
        shown_names(names)
        if len(names) <= 16
        else (f"{shown_names(names[:6])}, ..., {shown_names(names[-1:])}")
    )
    # The spec's x0, x1, ... read x_0, x_1 where served and drawn. Not a table with a text
    # column: no `features` either, but one input per column, named like it (the card said
    # "an array's positions ... (no names served)" of inputs age, income, city, ...).
    if not facts.get("features") and len(facts.get("inputs") or ()) <= 1:
        shown = f"an array's positions x_0 ... x_{len(names) - 1} (no names served)"
    target = f"; target {md_code(dataset['target'])}" if dataset.get("target") else ""
    exclude = dataset.get("exclude")
    dropped = f"; excluded: {md_text(shown_names(exclude))}" if exclude else ""
    return [f"- Features ({len(names)}): {md_text(shown)}{target}{dropped}"]


def _column_lines(preprocessing: dict[str, Any]) -> list[str]:
    """What the graph does to a table's raw columns before the network reads them."""
    columns = preprocessing.get("columns")
    if not columns:
        return []
    lines = [*column_lines(columns), SERVED_GAPS]
    return ["- Columns (inside the model graph):", *(f"  - {md_text(line)}" for line in lines)]


def patch_grid(names: list[str], values: np.ndarray) -> tuple[np.ndarray, int]:
    """([patch rows, patch columns] of `values` laid out as the patches sit in the image, the
    patch size in pixels)."""
    places = [PATCH_NAME.fullmatch(name) for name in names]
    tops = sorted({int(m[1]) for m in places if m})
    lefts = sorted({int(m[2]) for m in places if m})
    grid = np.zeros((len(tops), len(lefts)))
    for match, value in zip(places, values, strict=True):
        assert match is not None
        grid[tops.index(int(match[1])), lefts.index(int(match[2]))] = value
    steps = [b - a for axis in (tops, lefts) for a, b in itertools.pairwise(axis)]
    return grid, min(steps, default=1)


def _patch_map(names: list[str], values: np.ndarray, path: Path, axis: int | None) -> Path:
    plt = _pyplot()
    grid, size = patch_grid(names, values)
    runs = window_runs(names, axis)
    if 1 in grid.shape:
        fig = _step_bars(grid, size)
    elif runs is not None:
        fig = _window_figure(grid, *runs)
    else:
        fig = _patch_figure(grid, size)
    save(fig, path, dpi=90)
    plt.close(fig)
    return path


def _step_bars(grid: np.ndarray, size: int) -> Any:
    """A sequence's (a [steps, 1] row's) patches as bars in time order: drawn as an image it
    was a one-pixel strip in an empty figure, its title cut off."""
    steps = grid.reshape(-1)
    fig, ax = _pyplot().subplots(figsize=(7, 3.2))
    ax.bar(np.arange(len(steps)) * size, steps, width=0.8 * size, align="edge", color="tab:purple")
    ax.set(
        xlabel=f"step (each bar {size} step{'s' if size > 1 else ''})",
        ylabel="mean |Kernel SHAP value|",
        title="Global importance per sequence step (test rows)",
    )
    fig.tight_layout()
    return fig


def window_runs(names: list[str], axis: int | None) -> tuple[int, int] | None:
    """(steps a patch runs, 1 where steps go down the rows else 0) of a sequence window's
    patches (runs of steps of one feature), else None (an image's). `axis`: the model's
    features axis (patches.input_features_axis, the explainer's own rule): guessed from the
    patches' names, a 12-sensor window's runs were drawn as an image's squares."""
    if axis is None:
        return None
    places = [PATCH_NAME.fullmatch(name) for name in names]
    starts = sorted({int(m[2 - axis]) for m in places if m})  # each run's first step
    return (starts[1] - starts[0] if len(starts) > 1 else 1), axis


def _window_figure(grid: np.ndarray, steps: int, down: int) -> Any:
    """A sensor window's ([T, F]) runs of steps of one feature, features as columns: drawn
    as an image's patches it was captioned 'each cell a 1x1-pixel patch'."""
    grid = grid if down else grid.T
    fig, ax = _pyplot().subplots(figsize=(5, 4.2))
    shown = ax.imshow(grid, cmap="Purples", vmin=0, interpolation="nearest", aspect="auto")
    ax.set(
        xticks=range(grid.shape[1]),
        yticks=[],
        title="Global importance per feature and time (test rows)",
    )
    ax.set_xlabel(f"feature (each cell {steps} step{'s' * (steps > 1)} of one feature)", fontsize=8)
    ax.set_ylabel("steps, first at the top", fontsize=8)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04).set_label(
        "mean |Kernel SHAP value|, predicted output", fontsize=8
    )
    fig.tight_layout()
    return fig


def _patch_figure(grid: np.ndarray, size: int) -> Any:
    fig, ax = _pyplot().subplots(figsize=(5, 4.2))
    shown = ax.imshow(grid, cmap="Purples", vmin=0, interpolation="nearest")
    ax.set(xticks=[], yticks=[], title="Global importance of image patches (test rows)")
    ax.set_xlabel(f"each cell a {size}x{size}-pixel patch, where it sits in the image", fontsize=8)
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04).set_label(
        "mean |Kernel SHAP value|, predicted output", fontsize=8
    )
    fig.tight_layout()
    return fig


def importance_title(shown: int, total: int, rows: int | None = None) -> str:
    """Says when the plot leaves features out (the 15 largest of 300 look like all of them),
    and over how many rows it averages where given (a wide table's few, within a time budget)."""
    which = f"top {shown} of {total} features, " if shown < total else ""
    counted = f"{rows} test row{'s' * (rows != 1)}" if rows is not None else "test rows"
    return f"Global feature importance ({which}{counted})"


def importance_plot(
    names: list[str],
    values: np.ndarray,
    path: Path,
    shown: int = 15,
    rows: int | None = None,
    axis: int | None = None,
) -> Path:
    """Mean |attribution| per feature over test rows, largest on top; an image model's patches
    as a map of the image instead (a bar named `patch_r8_c16` says little, and 15 bars leave
    patches out), a window's (`axis`: its features axis) as runs of each feature."""
    if names and all(PATCH_NAME.fullmatch(name) for name in names):
        return _patch_map(names, values, path, axis)
    plt = _pyplot()
    order = np.argsort(values)[-shown:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(order) + 1.3))
    ax.barh([names[i] for i in order], values[order], color="tab:purple")
    ax.set(
        xlabel="mean |Kernel SHAP value| for the predicted output",
        title=importance_title(len(order), len(names), rows),
    )
    fig.tight_layout()
    save(fig, path, dpi=90)
    plt.close(fig)
    return path


TOP_TABLE = 10  # features the card's text lists with their importance (the plot shows 15)


def top_importance(names: list[str], values: np.ndarray, rows: int) -> dict[str, Any]:
    """The largest mean |attributions| (at most TOP_TABLE) for the card's text: a reader
    without the image (a terminal, a screen reader, a diff of two cards) had no number."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(-flat, kind="stable")[:TOP_TABLE] if len(flat) == len(names) else ()
    top = [{"feature": names[int(i)], "value": float(flat[i])} for i in order]
    return {"features": top, "total": len(names), "rows": rows}


def importance_lines(importance: dict[str, Any] | None) -> list[str]:
    """The card's table of the largest feature importances, as the plot draws them."""
    if not importance or not importance["features"]:
        return []
    shown, total = len(importance["features"]), importance["total"]
    which = f"the {shown} largest of {total}" if shown < total else f"all {total}"
    return [
        "## Feature importance",
        "",
        f"Mean |Kernel SHAP value| for the predicted output over {importance['rows']} test "
        f"rows, {which} features (the plot below):",
        "",
        "| feature | importance |",
        "|---|---:|",
        *(f"| {md_text(f['feature'])} | {f['value']:.4g} |" for f in importance["features"]),
        "",
    ]
