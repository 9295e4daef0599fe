"""Files of images for a model of any image size, as `aiaas explain --file` and `aiaas baseline`
read them: an .npy of one size, or JSONL whose lines may each hold their own size.

JSONL lines are read by batch scoring's own decoder (jsonl_rows.py), so a line `aiaas batch`
scores is a line explained, and a line it refuses is refused with the same words: wrong channel
count, not numbers, not valid JSON. Several sizes come back as a ragged array (batch/sizes.py),
explained or binned one size at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.runtime.errors import BadRequest
from functions.runtime.image_layout import image_size
from functions.runtime.manifest import ModelManifest
from functions.runtime.window_axis import input_features_axis
from infra.cli.explain_file import FileRows
from infra.cli.file_args import file_suffix, require_file
from infra.cli.jsonl_rows import read_jsonl


def read_images(path: Path, manifest: ModelManifest, layout: str) -> FileRows:
    """The images of an .npy or .jsonl file (any other: a BadRequest saying what to give)."""
    require_file(path)
    if file_suffix(path) not in (".npy", ".jsonl"):
        _not_windows(path, manifest)
        raise BadRequest(
            f"{path}: {manifest.name}:{manifest.version} takes images of any size; give an "
            ".npy file of them ([N, C, H, W] or [N, H, W, C], one size a file) or a .jsonl "
            f'file, one image a line ({{"{manifest.inputs[0].name}": [...]}} or the bare '
            "array), each line its own size"
        )
    if file_suffix(path) == ".jsonl":
        return _jsonl_images(path, manifest, layout)
    try:
        return FileRows(np.asarray(np.load(path, allow_pickle=False)))
    except ValueError as exc:
        raise BadRequest(f"{path}: {exc}; save the images as a numeric array") from None


def _not_windows(path: Path, manifest: ModelManifest) -> None:
    """A BadRequest for another file to a model of sensor windows of any length (a GRU over
    [N, -1, 12]): it was told the model "takes images of any size" and to give an .npy of
    [N, C, H, W] images, as batch told a CSV before hunt_journey16."""
    axis = input_features_axis(manifest)
    if axis is None:
        return
    spec = manifest.inputs[0]
    row = ["steps" if side == 1 - axis else str(spec.shape[side + 1]) for side in (0, 1)]
    raise BadRequest(
        f"{path}: {manifest.name}:{manifest.version} takes windows of any length; give an .npy "
        f"file of [N, {', '.join(row)}] windows (one length a file) or a .jsonl file, one window "
        f'a line ({{"{spec.name}": [...]}} or the bare array), each line its own length'
    )


def _jsonl_images(path: Path, manifest: ModelManifest, layout: str) -> FileRows:
    def refuse(image: np.ndarray) -> str | None:
        height, width = image_size(tuple(image.shape), layout)
        if not height or not width:  # the mean colour of no pixels is NaN
            return f"an image must be at least 1x1 pixels; got {height}x{width}"
        return None

    return read_jsonl(path, manifest, refuse)
