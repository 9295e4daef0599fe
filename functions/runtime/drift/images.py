"""Images of any size drift in what they show, not pixel by pixel: pixel (3, 40, 17) of a
224x224 photo and of a 64x48 one are not the same feature, and a model of any size has no
fixed row to bin. Each image becomes, per channel, the mean and the standard deviation of its
values (brightness and contrast, in the units the model reads), and its height and width:
numbers every image has whatever its size, binned like any feature. A camera that turns dark,
a new resolution, a grey-scale feed copied into three channels each move one of them."""

from __future__ import annotations

import numpy as np

from functions.runtime.explain.patches import declared_window, features_axis
from functions.runtime.image_layout import any_size_layout
from functions.runtime.manifest import ModelManifest

SIZE_FEATURES = ("height", "width")
# A sensor window of any length, [T, F] ("tf") or [F, T] ("ft"), by patches.features_axis
# (F a few, up to 64 beside the any-length side, or as `aiaas publish --window-features` says):
# each feature's mean and std over the window, and its length. Read as a greyscale image
# ("hw") it was ONE mean and std of every sensor in their own units, and a width always F:
# two sensors' columns swapped moved nothing (hunt_journey9 1).
STEPS_FEATURE = "steps"
_PIXEL_AXES = {"chw": (2, 3), "hwc": (1, 2), "hw": (1, 2)}


def image_layout(
    manifest: ModelManifest, features: tuple[str, ...] | None = None
) -> tuple[str, int] | None:
    """(layout, channels) of a model whose one input is an image of any size (a sequence's
    features its channels), else None. `features`: a baseline's, read as written (a
    sequence's from before 2026-12-07 are one grey image's)."""
    layout = any_size_layout(manifest)
    if layout is None:
        return None
    row = manifest.inputs[0].shape[1:]
    axis = features_axis(row, declared_window(manifest)) if layout == "hw" else None
    if axis is not None and features != image_feature_names(1):
        return ("tf", row[1]) if axis == 1 else ("ft", row[0])
    return layout, {"chw": row[0], "hwc": row[-1], "hw": 1}[layout]


def image_feature_names(channels: int, layout: str = "hw") -> tuple[str, ...]:
    """The binned features: each channel's mean and std, then the image's height and width; a
    sequence's each feature's, then its steps."""
    if layout in ("tf", "ft"):
        stats = tuple(f"feature_{c}_{s}" for c in range(channels) for s in ("mean", "std"))
        return (*stats, STEPS_FEATURE)
    stats = tuple(f"channel_{c}_{s}" for c in range(channels) for s in ("mean", "std"))
    return stats + SIZE_FEATURES


def image_features(images: np.ndarray, layout: str) -> np.ndarray:
    """[N, 2 C + 2] float64 of images [N, ...] of one size in `layout` (see the module); of
    sequences [N, 2 F + 1]."""
    pixels = np.asarray(images, dtype=np.float64)
    if layout in ("tf", "ft"):  # [N, T, 1, F] / [N, F, 1, T]: channels last / first
        pixels = pixels[:, :, None, :]
        stats = image_features(pixels, "hwc" if layout == "tf" else "chw")
        return stats[:, :-1] if layout == "tf" else np.delete(stats, -2, axis=1)
    if layout == "hw":
        pixels = pixels[..., None]
    axes = _PIXEL_AXES[layout]
    mean, std = pixels.mean(axis=axes), pixels.std(axis=axes)  # [N, C] each
    stats = np.stack([mean, std], axis=2).reshape(len(pixels), -1)  # c0 mean, c0 std, c1 ...
    height, width = (pixels.shape[a] for a in axes)
    size = np.broadcast_to(np.array([height, width], dtype=np.float64), (len(pixels), 2))
    return np.concatenate([stats, size], axis=1)
