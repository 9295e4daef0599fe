"""`aiaas monitor`'s drift PNG: a heat map of PSI per feature (rows) over the window's slices
(columns). A slice of too few served rows to judge is hatched grey, its PSI not painted: 30 rows
scored every feature's darkest red beside a table saying "sampling noise, 0 of 5 drifted"."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from infra.cli.pyplot import pyplot
from training.fonts import save

MAX_DRAWN = 40  # features drawn at most: an image model's pixels (784 for 28x28) fill no page
UNDER_COLOUR = "0.85"  # the grey of a cell of too few rows (its hatch darker)
UNDER_HATCH = "///"


def drift_pyplot() -> Any:
    return pyplot("the drift PNG", " (or --no-png: the table only)")


def most_drifted(psi: np.ndarray) -> list[int]:
    """The columns (features) of `psi` [slices, features] to draw: all of a few, else the
    MAX_DRAWN whose highest PSI in any slice is highest, in the baseline's order."""
    if psi.shape[1] <= MAX_DRAWN:
        return list(range(psi.shape[1]))
    peak = np.nan_to_num(psi, nan=-1.0).max(axis=0, initial=-1.0)
    return sorted(np.argsort(-peak, kind="stable")[:MAX_DRAWN].tolist())


def draw(
    title: str,
    features: tuple[str, ...],
    ends: np.ndarray,
    psi: np.ndarray,
    threshold: float,
    path: Path,
    served: np.ndarray | None = None,
    needed: np.ndarray | None = None,
) -> None:
    """The PNG at `path`: of many features, the MAX_DRAWN most drifted (the table lists them
    all); `served` rows a slice [S] under a feature's `needed` [F] hatched grey."""
    plt = drift_pyplot()
    figure = drift_figure(plt, title, features, ends, psi, threshold, served, needed)
    save(figure, path, dpi=110, format="png")  # not by the name's suffix: whatever it is
    plt.close(figure)


def under(psi: np.ndarray, served: np.ndarray | None, needed: np.ndarray | None) -> np.ndarray:
    """The cells [S, F] of a slice that served rows, but fewer than the feature needs."""
    if served is None or needed is None:
        return np.zeros(psi.shape, dtype=bool)
    rows = np.asarray(served)[:, None]
    return (rows > 0) & (rows < np.asarray(needed)[None, :])


def drift_figure(
    plt: Any, title: str, features: tuple[str, ...], ends: np.ndarray, psi: np.ndarray,
    threshold: float, served: np.ndarray | None = None, needed: np.ndarray | None = None,
) -> Any:  # fmt: skip
    """The drift PNG's figure; the cells of too few rows are left out of the red scale (and of
    which features are the most drifted)."""
    noise = under(psi, served, needed)
    judged = np.where(noise, np.nan, psi)
    kept = most_drifted(judged)
    heading = "drift per feature against the training baseline"
    if len(kept) < len(features):
        heading = f"the {len(kept)} most drifted of {len(features)} features"
    features, judged, noise = tuple(features[i] for i in kept), judged[:, kept], noise[:, kept]
    figure, axes = plt.subplots(figsize=(9, 0.28 * len(features) + 1.8))
    top = max(2 * threshold, 0.5)
    image = axes.imshow(
        np.ma.masked_invalid(judged.T), aspect="auto", cmap="Reds", vmin=0, vmax=top
    )
    axes.set_yticks(range(len(features)), features, fontsize=7)
    ticks = np.linspace(0, len(ends) - 1, min(6, len(ends))).astype(int)
    labels = [datetime.fromtimestamp(ends[i], UTC).strftime("%m-%d %H:%M") for i in ticks]
    axes.set_xticks(ticks, labels, fontsize=7)
    label = "end of slice (UTC); blank: nothing served"
    if noise.any():
        _hatch(axes, noise)
        asks = {int(n) for n in np.asarray(needed)[kept][noise.any(axis=0)]}
        said = f"{min(asks)}{'+' if len(asks) > 1 else ''}"
        label += f"\nhatched grey: too few rows to judge drift ({said} a slice needed)"
    axes.set_xlabel(label)
    # PSI 0.6 and 6 are one colour past the scale's top: the bar's arrow says there is more.
    beyond = bool(np.nanmax(judged, initial=0.0) > top)
    figure.colorbar(
        image,
        ax=axes,
        label=f"PSI (drift above {threshold:g})",
        extend="max" if beyond else "neither",
    )
    axes.set_title(f"{title}: {heading}")
    figure.tight_layout()
    return figure


def _hatch(axes: Any, noise: np.ndarray) -> None:
    """Each run of cells of too few rows in a slice (column): one grey hatched rectangle."""
    from matplotlib.patches import Rectangle

    for step in range(noise.shape[0]):
        rows = np.flatnonzero(noise[step])
        for run in np.split(rows, np.flatnonzero(np.diff(rows) > 1) + 1):
            if run.size:
                axes.add_patch(
                    Rectangle(
                        (step - 0.5, run[0] - 0.5),
                        1,
                        run.size,
                        facecolor=UNDER_COLOUR,
                        edgecolor="0.55",
                        hatch=UNDER_HATCH,
                        linewidth=0,
                    )
                )
