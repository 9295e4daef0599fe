"""What a reviewer reads off the card's plots: every label inside the figure, the rows and
target the plot is of, the epoch whose weights were kept (figures measured, not pixel-matched)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.image import imread

from infra.cli import compare_plot
from tests.torchless import torch_or_skip
from training.card import (
    _feature_lines,
    confusion_figure,
    importance_plot,
    loss_figure,
    residual_figure,
    tick_labels,
)

LONG = (
    "Cultivar A (Barolo, Piedmont north slope)",
    "Cultivar B (Grignolino, Asti lowlands)",
    "Cultivar C (Barbera, Alba hills late harvest)",
)


def outside(figure: Any) -> list[str]:
    """The visible texts (ticks, axis titles, titles) that reach past the figure's edges."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    texts = [
        tick.label1
        for axes in figure.axes
        for axis in (axes.xaxis, axes.yaxis)
        for tick in axis.get_major_ticks()
        if min(axis.get_view_interval()) <= tick.get_loc() <= max(axis.get_view_interval())
    ]  # a tick past the view's ends is listed, not drawn
    texts += [t for axes in figure.axes for t in (axes.xaxis.label, axes.yaxis.label, axes.title)]
    shown = [t for t in texts if t.get_visible() and t.get_text()]
    return [
        t.get_text()
        for t in shown
        if not all(box.contains(*corner) for corner in t.get_window_extent(renderer).corners())
    ]


# Categories of one path: cut at 2 lines of 18 characters, all three read
# "Electronics >\nComputers >..." (hunt_card 4).
PATH = (
    "Electronics > Computers > Laptops > Gaming",
    "Electronics > Computers > Laptops > Business",
    "Electronics > Computers > Desktops",
)


def test_names_cut_alike_keep_their_ends_in_the_card_and_compare() -> None:
    figure = confusion_figure([[3, 1, 0], [0, 4, 0], [1, 0, 2]], PATH, "held.csv")
    axes = figure.axes[0]
    for ticks in (axes.get_xticklabels(), axes.get_yticklabels()):
        shown = [t.get_text() for t in ticks]
        assert len(set(shown)) == 3 and all(s.startswith("Electronics >\n...") for s in shown)
        assert shown[0].endswith("> Gaming") and shown[2].endswith("> Desktops"), shown
    assert outside(figure) == []
    report = {
        "model": "shop", "a": "1", "b": "2", "agreement": {"rate": 0.8},
        "confusion": {"labels": list(PATH), "matrix": [[3, 1, 0], [0, 4, 0], [1, 0, 2]]},
    }  # fmt: skip
    drawn = compare_plot._confusion(compare_plot.pyplot(), report)
    assert len({t.get_text() for t in drawn.axes[0].get_yticklabels()}) == 3
    assert tick_labels(["a" * 40, "a" * 40]) == [
        "a" * 18 + "\n..." + "a" * 15 + f" ({i})" for i in (0, 1)
    ]


def test_long_class_names_are_wrapped_and_the_matrix_keeps_its_labels_inside() -> None:
    # 45-character names cut the tick labels, the axis titles and the title off the figure.
    assert tick_labels(LONG)[0] == "Cultivar A\n(Barolo, Piedmo..."
    assert tick_labels(("0", "setosa")) == ["0", "setosa"]
    figure = confusion_figure([[19, 0, 0], [0, 22, 0], [0, 1, 13]], LONG, "holdout.csv")
    assert outside(figure) == []
    assert figure.axes[0].get_title() == "Confusion matrix\nholdout.csv, 55 rows (counts)"
    report = {
        "model": "wine", "a": "1", "b": "2", "agreement": {"rate": 0.98},
        "confusion": {"labels": list(LONG), "matrix": [[19, 0, 0], [0, 22, 0], [0, 1, 13]]},
    }  # fmt: skip
    assert outside(compare_plot._confusion(compare_plot.pyplot(), report)) == []


def test_the_residual_plot_names_the_target_and_the_rows() -> None:
    truth = np.array([150_000.0, 420_000.0, 1_900_000.0])
    figure = residual_figure(truth, truth * 1.1, "price_usd", "test")
    left, right = figure.axes
    assert (left.get_xlabel(), left.get_ylabel()) == ("true price_usd", "predicted price_usd")
    assert right.get_ylabel() == "residual (predicted - true)"
    assert figure.get_suptitle() == "test, 3 rows"
    assert outside(figure) == []


def crowded(figure: Any) -> list[tuple[str, str]]:
    """Neighbouring tick labels of one axis closer than 4 pixels (x) or 2 (y): read as one."""
    figure.set_dpi(90)  # as the card saves it
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    found = []
    for axes in figure.axes:
        for axis, gap in ((axes.xaxis, 4), (axes.yaxis, 2)):
            low, high = sorted(axis.get_view_interval())
            labels = [t.label1 for t in axis.get_major_ticks() if low <= t.get_loc() <= high]
            boxes = [label.get_window_extent(renderer) for label in labels]
            for i, (a, b) in enumerate(itertools.pairwise(boxes)):
                apart = b.x0 - a.x1 if axis is axes.xaxis else b.y0 - a.y1
                if apart < gap:
                    found.append((labels[i].get_text(), labels[i + 1].get_text()))
    return found


def test_the_residual_plot_ticks_a_price_legibly() -> None:
    # A house-price card (EUR, -300,000 to 330,000 and 0 to 700,000) ticked 100000200000300000:
    # six-digit labels every 50,000 or 100,000 ran into one another. Now 100k, 200k, ...
    rng = np.random.default_rng(0)
    for low, high in [(0, 3.3e5), (-3e5, 3e5), (-9e5, -1e5), (0, 7e5), (0, 1.0), (1e6, 2e7)]:
        truth = rng.uniform(low, high, 200)
        figure = residual_figure(truth, truth + rng.normal(0, (high - low) / 20, 200), "y", "t")
        assert crowded(figure) == [], (low, high)
    truth = rng.uniform(0, 7e5, 200)
    figure = residual_figure(truth, truth * 1.05, "price_eur", "test")
    figure.canvas.draw()
    assert "200k" in [t.get_text() for t in figure.axes[0].get_xticklabels()]


def epoch_records(rows: list[tuple[float, ...]]) -> list[Any]:
    """training.trainer's records (a module that imports torch: imported here, so that the card
    tests run on an install without it, and these skip)."""
    torch_or_skip()
    from training.trainer import EpochRecord

    return [EpochRecord(int(row[0]), *row[1:]) for row in rows]


def test_the_loss_plot_marks_the_epoch_whose_weights_were_kept() -> None:
    # The card's metrics are the best epoch's; the curves ran on to the last one unmarked.
    history = epoch_records(
        [(e, 1 / e, 1.2 / e, 0.5 + e / 10, 0.01, 0.1, 0.1) for e in range(1, 9)]
    )
    for axes in loss_figure(history, "accuracy", best_epoch=2).axes:
        marks = [line for line in axes.get_lines() if list(line.get_xdata()) == [2, 2]]
        assert len(marks) == 1 and marks[0].get_label() == "kept: epoch 2"


def test_a_sequence_models_importance_is_bars_in_step_order(tmp_path: Path) -> None:
    # A [32, 1] row's patches drawn as an image were a one-pixel strip, its title cut off.
    names = [f"patch_r{t}_c0" for t in range(32)]
    png = imread(importance_plot(names, np.linspace(0, 1, 32), tmp_path / "importance.png"))
    height, width = png.shape[:2]
    assert (height, width) == (288, 630)


def test_an_arrays_features_are_named_as_served_and_drawn() -> None:
    # The card listed x0 ... x63 beside an importance plot (and /explain) of x_27, x_18, ...
    array = {"features": [], "preprocessing": {"feature_names": [f"x{i}" for i in range(64)]}}
    assert _feature_lines({**array, "training": {"dataset": {}}}) == [
        "- Features (64): an array's positions x_0 ... x_63 (no names served)"
    ]
    table = {"features": ["age", "bmi"], "training": {"dataset": {"target": "progression"}}}
    assert _feature_lines(table) == ["- Features (2): age, bmi; target `progression`"]
    # A table with a text column: no `features`, but one input per column, named like it.
    mixed = {
        "features": [],
        "inputs": ["age float32 [-1, 1]", "city string [-1, 1]"],
        "preprocessing": {"feature_names": ["age", "city"]},
        "training": {"dataset": {"target": "plan"}},
    }
    assert _feature_lines(mixed) == ["- Features (2): age, city; target `plan`"]


def test_the_loss_axis_says_which_loss_it_is() -> None:
    # A regression's loss (MSE over the target's variance) read 0.46 beside an rmse of 52.
    history = epoch_records([(e, 1 / e, 1.2 / e, 1 / e, 0.01, 0.1, 0.1) for e in (1, 2, 3)])
    left, right = loss_figure(history, "loss", 3, "MSE / train variance of target").axes
    assert left.get_ylabel() == right.get_ylabel() == "MSE / train variance of target"
    assert right.get_title() == "Validation loss"
