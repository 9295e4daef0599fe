"""What a version without a drift baseline (`aiaas monitor`) or an explain background is told to
add: the file its rows come from, chosen by its input, and, for a `publish --quantize` variant,
that it has none of its source's. One rule for both, so they never name different files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from functions.runtime.image_layout import is_grid, is_image
from functions.runtime.manifest import ModelManifest, TensorSpec

Kind = Literal["images", "inputs", "rows", "table"]
FILES: dict[Kind, str] = {
    "images": "IMAGES.npy",
    "inputs": "INPUTS.npy",
    "rows": "ROWS.npy",
    "table": "DATA.csv",
}
VARIANT = "; a `publish --quantize` variant has none of its source's: give it the same data"


def sample_kind(inputs: Sequence[TensorSpec]) -> Kind:
    """ "images" for one input that is a batch of images by its channel axis (IMAGES.npy:
    `is_image`), "inputs" for one [N, A, B] that may be greyscale images or sequences
    (INPUTS.npy, said with its shape: `is_grid`, a digit [N, 28, 28] or a time series [N, 100,
    12]), "rows" for one other input of rank 3 or more (ROWS.npy, a waveform [N, 32, 1]), else
    "table" (DATA.csv)."""
    if len(inputs) != 1:
        return "table"
    if is_image(inputs[0]):
        return "images"
    if is_grid(inputs[0]):
        return "inputs"
    return "rows" if len(inputs[0].shape) >= 3 else "table"


def shape_said(inputs: Sequence[TensorSpec]) -> str:
    """The one input's shape as the hints say it, its batch axis N: `[N, 100, 12]`."""
    dims = inputs[0].shape[1:] if inputs else ()
    return "[" + ", ".join(["N", *(str(d) for d in dims)]) + "]"


def variant_note(manifest: ModelManifest) -> str:
    """VARIANT for a `publish --quantize` variant (its manifest's quantization record), else ""."""
    quantized = manifest.extras.get("quantization")
    return VARIANT if isinstance(quantized, dict) and "method" in quantized else ""
