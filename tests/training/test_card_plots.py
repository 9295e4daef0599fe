"""The model card's plots stay readable for wide data and many classes (real PNGs, read back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from tests.torchless import torch_or_skip
from training.card import (
    confusion_plot,
    importance_plot,
    importance_title,
    loss_figure,
    loss_plot,
)


def test_the_importance_plot_of_wide_data_says_it_shows_the_top_features(tmp_path: Path) -> None:
    # 300 columns: the plot shows the 15 largest, and its title used to read as if that were all.
    names = [f"f{i}" for i in range(300)]
    values = np.linspace(0.0, 1.0, 300)
    png = imread(importance_plot(names, values, tmp_path / "importance.png"))
    assert 400 < png.shape[0] < 700  # 15 bars tall, not 300
    assert (
        importance_title(15, 300) == "Global feature importance (top 15 of 300 features, test rows)"
    )
    assert importance_title(3, 3) == "Global feature importance (test rows)"


def test_a_confusion_plot_of_forty_classes_grows_with_them(tmp_path: Path) -> None:
    labels = tuple(f"product category number {k}" for k in range(40))
    matrix = (np.eye(40, dtype=int) * 4).tolist()
    png = imread(confusion_plot(matrix, labels, tmp_path / "confusion.png"))
    assert png.shape[0] >= 1600 and png.shape[0] == png.shape[1]  # 0.45 in a class at 90 dpi


def test_the_loss_plot_ticks_whole_epochs(tmp_path: Path) -> None:
    """Three epochs were ticked 1.0, 1.5, 2.0, 2.5, 3.0: half an epoch is no point of the run."""
    torch_or_skip()
    from training.trainer import EpochRecord  # imports torch

    history = [EpochRecord(e, 1 / e, 1.2 / e, 0.5 + e / 10, 0.01, 0.1, 0.1) for e in (1, 2, 3)]
    figure = loss_figure(history, "accuracy")
    for axes in figure.axes:
        ticks = [t for t in axes.get_xticks() if 1 <= t <= 3]
        assert ticks == [1.0, 2.0, 3.0]
    assert imread(loss_plot(history, "accuracy", tmp_path / "loss.png")).shape[:2] == (315, 810)
