"""Which models take images of any height and width (torch.onnx.export with H and W in
`dynamic_shapes` / `dynamic_axes`): explained on each image's own size (explain/any_size.py),
batch-scored a size at a time (batch/sizes.py), drift-monitored on statistics every size has
(drift/images.py). Light on purpose: the predict path imports it, never the explainers."""

from __future__ import annotations

from functions.runtime.manifest import ModelManifest
from functions.runtime.tensor_spec import NUMERIC, TensorSpec


def any_size_layout(manifest: ModelManifest) -> str | None:
    """ "chw", "hwc" or "hw" for a model whose one numeric input is an image with a dynamic
    height or width (and a fixed channel count), else None."""
    if len(manifest.inputs) != 1 or "vocab_file" in manifest.preprocessing:
        return None
    spec = manifest.inputs[0]
    row = spec.shape[1:]
    if not spec.dtype.startswith(NUMERIC) or spec.shape[:1] not in ((-1,), (1,)) or -1 not in row:
        return None
    if len(row) == 2:
        return "hw"
    if len(row) == 3 and 1 <= row[0] <= 4 and -1 not in row[:1]:
        return "chw"
    if len(row) == 3 and 1 <= row[2] <= 4:
        return "hwc"
    return None


def image_size(row: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(height, width) of one image of `row`'s shape."""
    return (row[1], row[2]) if layout == "chw" else (row[0], row[1])


IMAGE_CHANNELS = (1, 3, 4)  # grey, RGB, RGBA
MIN_SIDE = 8  # a greyscale [N, H, W]'s least height and width: [N, 32, 1] is a waveform


def is_image(spec: TensorSpec) -> bool:
    """Whether an input is a batch of images by its channel axis: [N, C, H, W] or [N, H, W, C]
    with C of 1, 3 or 4, what the hint for a baseline to add calls images. Rank 3 or more
    alone was taken for one: a GRU's waveform [N, 32, 1] was told to add `IMAGES.npy` (review
    rev11 7); a greyscale [N, H, W] is `is_grid`, as a sequence is."""
    shape = spec.shape
    return len(shape) == 4 and (shape[1] in IMAGE_CHANNELS or shape[3] in IMAGE_CHANNELS)


def is_grid(spec: TensorSpec) -> bool:
    """A numeric [N, A, B], each side MIN_SIDE or more, or any (-1): a greyscale image [N, 28,
    28] and a time series [N, 100, 12] or a sequence of embeddings [N, -1, 64] alike, which its
    shape cannot tell apart. Called images, the series and sequences were told to add
    `IMAGES.npy` (a sample of its training images; review rev12 4)."""
    sides = spec.shape[1:]
    return (
        len(sides) == 2
        and spec.dtype.startswith(NUMERIC)
        and all(side == -1 or side >= MIN_SIDE for side in sides)
    )
