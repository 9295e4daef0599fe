"""An image model's card shows where in the image its attributions go: every patch's mean
|attribution| drawn at its place in the image, not the largest 15 as bars of patch names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.image import imread

from training.card import importance_plot, patch_grid

PATCHES = [f"patch_r{top}_c{left}" for top in (0, 4, 8) for left in (0, 4, 8, 12)]


def test_patches_are_laid_out_as_in_the_image() -> None:
    values = np.arange(12.0)
    grid, size = patch_grid(PATCHES, values)
    assert size == 4
    np.testing.assert_array_equal(grid, values.reshape(3, 4))


def test_the_card_draws_an_image_models_importance_where_the_patches_are(tmp_path: Path) -> None:
    values = np.zeros(len(PATCHES))
    values[-1] = 1.0  # the bottom-right patch
    rgb = imread(importance_plot(PATCHES, values, tmp_path / "importance.png"))[..., :3]
    dark = np.argwhere(rgb.sum(axis=-1) < 1.0)  # the strongest cell (colour bar aside)
    assert len(dark) > 100
    height, width = rgb.shape[:2]
    rows, columns = dark[:, 0], dark[:, 1]
    # Bars put the largest on top; the map puts it where the patch is: low and to the right
    # of the map's middle (the colour bar is at the far right, drawn thin).
    assert np.median(rows) > height / 2
    assert np.median(columns[columns < 0.8 * width]) > width / 3


def test_names_that_are_not_patches_are_still_bars(tmp_path: Path) -> None:
    names = ["age", "income", "patch_r0_c0"]
    png = imread(importance_plot(names, np.array([0.1, 0.2, 0.3]), tmp_path / "bars.png"))
    assert png.shape[0] < 300  # three bars
