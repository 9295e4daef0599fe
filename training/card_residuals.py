"""The card's residual plot (a regressor's test rows: predicted against true, residuals against
predicted), in the target's units; drawn for `aiaas train` and `aiaas publish --data` alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from training.fonts import legible, save


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on build machines or GPU containers
    import matplotlib.pyplot as plt

    return legible(plt)


def residual_plot(
    y_true: np.ndarray, predicted: np.ndarray, path: Path, target: str = "", split: str = "test"
) -> Path:
    """`split`'s predictions against truth, and residuals against predictions."""
    plt = pyplot()
    fig = residual_figure(y_true, predicted, target, split)
    save(fig, path, dpi=90)
    plt.close(fig)
    return path


def residual_figure(y_true: np.ndarray, predicted: np.ndarray, target: str, split: str) -> Any:
    """Both panels name the target (its units) and the rows they show: a reviewer reads the
    card's rmse against them."""
    fig, (left, right) = pyplot().subplots(1, 2, figsize=(9, 3.5))
    name = f" {target}" if target else ""
    left.scatter(y_true, predicted, s=10, alpha=0.7)
    low, high = float(min(y_true.min(), predicted.min())), float(max(y_true.max(), predicted.max()))
    left.plot([low, high], [low, high], color="gray", linestyle="--", label="predicted = true")
    left.set(xlabel=f"true{name}", ylabel=f"predicted{name}", title="Predicted vs true")
    left.legend(fontsize=8, loc="upper left")
    right.scatter(predicted, predicted - y_true, s=10, alpha=0.7)
    right.axhline(0, color="gray", linestyle="--")
    right.set(xlabel=f"predicted{name}", ylabel="residual (predicted - true)", title="Residuals")
    _short_ticks((left, right), y_true, predicted)
    fig.suptitle(f"{split}, {len(y_true)} rows", fontsize=9)
    fig.tight_layout()
    return fig


# From this magnitude an axis in the target's units is ticked 200k, 1.5M (the units stay in
# the axis title), and an x axis has at most X_TICKS intervals: a price's 100000, 150000, ...
# 600000 ran into one another under a 4.5-inch panel (a house-price card).
SHORT_TICKS_FROM = 10_000
X_TICKS = 5


def _short_ticks(panels: tuple[Any, Any], y_true: np.ndarray, predicted: np.ndarray) -> None:
    from matplotlib.ticker import EngFormatter, MaxNLocator

    values = np.concatenate([y_true, predicted, predicted - y_true]).astype(np.float64)
    finite = values[np.isfinite(values)]
    short = len(finite) > 0 and float(np.abs(finite).max()) >= SHORT_TICKS_FROM
    for axes in panels:
        axes.xaxis.set_major_locator(MaxNLocator(nbins=X_TICKS))
        for axis in (axes.xaxis, axes.yaxis):
            if short:
                axis.set_major_formatter(EngFormatter(sep=""))
