"""Whether a version's drift baseline fits its model: read by the predict function before it
counts a version's rows, and by `aiaas monitor`, which otherwise waited for counts that the
function would never write (a baseline copied from another version by hand)."""

from __future__ import annotations

import numpy as np

from functions.runtime.drift.baseline import DriftBaseline
from functions.runtime.drift.images import image_feature_names, image_layout
from functions.runtime.drift.text import TEXT_FEATURES
from functions.runtime.errors import InvalidInput
from functions.runtime.input_columns import by_column, input_columns
from functions.runtime.manifest import ModelManifest


def why_unfit(manifest: ModelManifest, baseline: DriftBaseline, *, text: bool) -> str | None:
    """Why `baseline` cannot bin what `manifest`'s model is sent; None when it can. `text`: the
    model is fed texts (its file carries a tokenizer), binned as two numbers a text."""
    fitted = baseline.prediction.output if baseline.prediction is not None else ""
    if fitted and fitted not in {spec.name for spec in manifest.outputs}:
        return f"its baseline's predictions are of output {fitted!r}, which the model lacks"
    if text:
        return None if baseline.features == TEXT_FEATURES else "not a text baseline"
    if by_column(manifest):  # one input a column: rows are all of them side by side
        try:
            columns = input_columns(manifest)
        except InvalidInput as exc:
            return exc.message
        strings = {columns.names[c] for c in columns.strings}
        known = {c.name for c in baseline.categories}
        if columns.numeric().names != baseline.features or not known <= strings:
            return "its baseline's features are not its inputs"
        return None
    if baseline.categories:
        return "its baseline has string columns"
    image = image_layout(manifest, baseline.features)
    if image is not None:  # any image size: each image's channel statistics (images.py)
        if baseline.features != image_feature_names(image[1], image[0]):
            return "not an image-statistics baseline"
        return None
    spec = manifest.inputs[0]
    width = int(np.prod(spec.shape[1:])) if len(spec.shape) > 1 else 1
    if not spec.dtype.startswith(("float", "int", "uint")) or width != baseline.width:
        return f"its baseline does not fit input {spec.name} of {spec.dtype} x {width}"
    return None
