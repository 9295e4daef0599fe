"""`aiaas explain --png` on a user's RGB image model: the input is drawn in its colours (a green
image green, not in inverted grey), channels first or last, a uint8 image as its 0-255 pixels;
a grey image in grey as it is, black black."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from matplotlib.image import imread
from onnx import TensorProto, helper, numpy_helper

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


def _grey_cnn(path: Path) -> Path:
    """[N, 1, 8, 8] float pixels -> 3 logits (Flatten, Gemm): a grayscale image model."""
    weights = np.random.default_rng(1).normal(size=(SIDE * SIDE, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("Gemm", ["f", "G"], ["logits"]),
        ],
        "grey",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, SIDE, SIDE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        initializer=[numpy_helper.from_array(weights, "G")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("bright", [1.0, 16.0, 255.0])  # [0, 1], 8x8 digits' 0-16, uint8's
def test_a_grey_image_is_drawn_as_it_is_not_its_negative(tmp_path: Path, bright: float) -> None:
    """Black with a bright 2x2 patch top right (an X-ray, a digit): the input panel of the PNG
    is black where the image is and white only at the patch (gray_r drew it inverted)."""
    store = LocalStore(tmp_path / "store")
    model = _grey_cnn(tmp_path / "grey.onnx")
    publish = ["publish", str(model), "--name", "g", "--labels", "a,b,c"]
    assert main(["--store", store.uri, *publish]) == 0
    images = np.random.default_rng(0).random((20, 1, SIDE, SIDE), np.float32) * bright
    np.save(tmp_path / "train.npy", images)
    assert main(["--store", store.uri, "baseline", "g", str(tmp_path / "train.npy")]) == 0
    probe = np.zeros((1, 1, SIDE, SIDE), np.float32)
    probe[0, 0, :2, -2:] = bright
    (tmp_path / "probe.json").write_text(json.dumps(probe.tolist()))
    png = tmp_path / "why.png"
    args = ["explain", "g", "--inputs", f"@{tmp_path / 'probe.json'}", "--png", str(png)]
    assert main(["--store", store.uri, *args, "--samples", "64"]) == 0
    grey = imread(png)[..., :3].mean(axis=-1)
    panel = grey[:, : grey.shape[1] // 2]  # the input, left of the heat map
    dark = panel < 0.1
    assert dark.sum() > 5_000  # about 300 x 300 pixels at 110 dpi, less its patch
    rows = np.flatnonzero(dark.sum(axis=1) > 100)  # the image's, not its title's
    cols = np.flatnonzero(dark.sum(axis=0) > 100)
    cols = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)[0]  # not the heat map's frame
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    corner = grey[top + 3 : top + (bottom - top) // 5, right - (right - left) // 5 : right - 3]
    assert corner.min() > 0.9  # the bright patch: white, in its place
