"""`aiaas explain --png` on a user's RGB image model: the input is drawn in its colours (a green
image green, not in inverted grey), channels first or last, a uint8 image as its 0-255 pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from functions.runtime.store import LocalStore
from infra.cli.explain_plot import picture
from infra.cli.main import main
from tests.infra.test_image_fixed_batch import SIDE, fixed_batch_cnn


def _green_pixels(png: Path) -> int:
    """Pixels that are clearly green: no colour map of the plot (grey, red-white-blue) has any."""
    rgb = imread(png)[..., :3]
    return int(((rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.3) & (rgb[..., 2] < 0.3)).sum())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    root = tmp_path_factory.mktemp("explain-png")
    store = LocalStore(root / "store")
    path = fixed_batch_cnn(root / "rgb.onnx", batch="N")
    assert (
        main(["--store", store.uri, "publish", str(path), "--name", "rgb", "--labels", "a,b,c"])
        == 0
    )
    images = np.random.default_rng(0).random((20, 3, SIDE, SIDE), np.float32)
    np.save(root / "train.npy", images)
    assert main(["--store", store.uri, "baseline", "rgb", str(root / "train.npy")]) == 0
    return store


def test_an_rgb_image_is_drawn_in_its_colours(store: LocalStore, tmp_path: Path) -> None:
    green = np.zeros((1, 3, SIDE, SIDE), np.float32)
    green[:, 1] = 1.0
    (tmp_path / "green.json").write_text(json.dumps(green.tolist()))
    png = tmp_path / "why.png"
    args = ["explain", "rgb", "--inputs", f"@{tmp_path / 'green.json'}", "--png", str(png)]
    assert main(["--store", store.uri, *args, "--samples", "64"]) == 0
    assert _green_pixels(png) > 5_000  # the input panel, about 300 x 300 pixels at 110 dpi


def test_pictures_keep_colour_in_either_layout_and_scale_to_unit_range() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3)).astype(np.float64)
    last = picture(rgb.reshape(-1), (6, 5, 3))
    np.testing.assert_allclose(last, rgb / 255)  # uint8 pixels: their own 0-255 scale
    first = picture(rgb.transpose(2, 0, 1) / 255, (3, 6, 5))
    np.testing.assert_allclose(first, rgb / 255)  # floats in [0, 1] as they are
    normalised = (rgb / 255 - 0.45) / 0.22  # mean/std normalised: stretched to [0, 1]
    stretched = picture(normalised.transpose(2, 0, 1), (3, 6, 5))
    assert stretched.shape == (6, 5, 3)
    assert (stretched.min(), stretched.max()) == (0.0, 1.0)
    grey = picture(np.arange(12.0), (3, 4))
    np.testing.assert_array_equal(grey, np.arange(12.0).reshape(3, 4))  # one channel: as before
