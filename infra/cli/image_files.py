"""Files of images for a model of any image size, as `aiaas explain --file` and `aiaas baseline`
read them: an .npy of one size, or JSONL whose lines may each hold their own size.

JSONL lines are read by batch scoring's own decoder (functions/runtime/batch/jsonl.py), so a
line `aiaas batch` scores is a line explained, and a line it refuses is refused with the same
words: wrong channel count, not numbers, not valid JSON. Several sizes come back as a ragged
array (batch/sizes.py), explained or binned one size at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.runtime.batch.jsonl import JsonlDecoder
from functions.runtime.errors import BadRequest
from functions.runtime.image_layout import image_size
from functions.runtime.manifest import ModelManifest
from infra.cli.explain_file import FileRows, json_fields


def read_images(path: Path, manifest: ModelManifest, layout: str) -> FileRows:
    """The images of an .npy or .jsonl file (any other: a BadRequest saying what to give)."""
    if not path.is_file() or path.suffix not in (".npy", ".jsonl"):
        raise BadRequest(
            f"{path}: {manifest.name}:{manifest.version} takes images of any size; give an "
            ".npy file of them ([N, C, H, W] or [N, H, W, C], one size a file) or a .jsonl "
            f'file, one image a line ({{"{manifest.inputs[0].name}": [...]}} or the bare '
            "array), each line its own size"
        )
    if path.suffix == ".jsonl":
        return _jsonl_images(path, manifest, layout)
    try:
        return FileRows(np.asarray(np.load(path, allow_pickle=False)))
    except ValueError as exc:
        raise BadRequest(f"{path}: {exc}; save the images as a numeric array") from None


def _jsonl_images(path: Path, manifest: ModelManifest, layout: str) -> FileRows:
    raw = path.read_bytes().split(b"\n")
    chunk = JsonlDecoder(manifest).chunk(1, raw)
    assert chunk.positions is not None  # a text format numbers its rows by line
    reasons = {error.position: error.reason for error in chunk.errors}
    images = chunk.features[manifest.inputs[0].name]
    for image, line in zip(images, chunk.positions.tolist(), strict=True):
        height, width = image_size(tuple(image.shape), layout)
        if not height or not width:  # the mean colour of no pixels is NaN
            reasons[line] = f"an image must be at least 1x1 pixels; got {height}x{width}"
    lines = sorted([*chunk.positions.tolist(), *(error.position for error in chunk.errors)])
    row = {line: index for index, line in enumerate(lines)}
    empty = [i for i, line in enumerate(chunk.positions.tolist()) if line in reasons]
    if empty:
        keep = np.ones(len(images), dtype=bool)
        keep[empty] = False
        images = images[keep]
    inputs = [spec.name for spec in manifest.inputs]
    records = [json_fields(raw[line - 1], inputs) for line in lines]
    return FileRows(images, {row[line]: why for line, why in reasons.items()}, lines, records)
