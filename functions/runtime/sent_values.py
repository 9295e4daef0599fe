"""What a caller sent, described, for an input value that does not convert to its type: the
messages of validation.py that read the values themselves (an encoded image, a null among
texts, an object where text goes)."""

from __future__ import annotations

import numpy as np

from functions.runtime.dtypes import BY_NAME
from functions.runtime.image_layout import is_grid, is_image
from functions.runtime.manifest import TensorSpec
from functions.runtime.window_axis import features_axis

__all__ = ["encoded_image_hint", "send_for_null", "sent_value", "string_null"]


def encoded_image_hint(spec: TensorSpec, value: np.ndarray) -> str:
    """For text sent to an image input (a base64 PNG, as other image APIs take): what to send
    instead; "" when that is not what was sent."""
    if value.dtype.kind not in "USO" or BY_NAME[spec.dtype].numpy.kind == "O":
        return ""
    # An image by its channel axis or its sides: a sensor window [N, 50, 6] was told to decode
    # a PNG with PIL (hunt_journey9 4), and one of 12 sensors of any length [N, -1, 12] too.
    if not (is_image(spec) or is_grid(spec)) or features_axis(spec.shape[1:]) is not None:
        return ""
    if not all(isinstance(v, str | bytes) for v in value.flat) or value.size == 0:
        return ""
    return (
        "an image is sent as its pixel values (nested lists of numbers, or an OIP tensor), "
        "not an encoded PNG/JPEG or base64: decode it first (numpy.asarray(PIL.Image.open(file)))"
    )


def string_null(spec: TensorSpec, value: np.ndarray) -> str | None:
    """What to send instead of a null among a string input's texts (pandas writes a missing
    text so), or None when that is not what is wrong."""
    if spec.dtype != "string" or value.dtype != object:
        return None
    flat = value.reshape(-1).tolist()
    if None not in flat or not all(v is None or isinstance(v, str | bytes) for v in flat):
        return None
    return f"input '{spec.name}' holds a null, which a string input cannot: {send_for_null(spec)}"


def ambiguous_null(spec: TensorSpec) -> str | None:
    """Why a null cannot be sent to `spec`: its encoder learnt Python None ("None") and NaN
    ("nan") as two categories, which scikit-learn answers apart, and JSON's null is either (json.dumps
    writes None so, pandas' to_json NaN, and DataFrame(records) reads it back as None while
    read_json reads NaN); None where a null is that input's missing category."""
    if spec.missing is None or "None" not in spec.na_categories:
        return None
    return (
        f"input '{spec.name}' holds a null, which could be either of two categories its encoder "
        'learnt apart: send "None" for a value missing as Python None in the frame the model was '
        f'fit on, or "{spec.missing}" for one missing as NaN (an empty CSV cell is NaN, as '
        "pandas' read_csv reads it)"
    )


def send_for_null(spec: TensorSpec) -> str:
    """What to send for a missing text of the string input `spec`, which takes no null: "None"
    where its encoder learnt that category (a frame fit with Python None for its gaps, which
    `predict_proba` encodes so; "" it never saw: zeros or a refusal), else ""."""
    if spec.none_category:
        return (
            'send "None" for a value missing as Python None in the frame the model was fit on '
            '(its encoder learnt the category "None", as skl2onnx writes a None and the text '
            '"None" alike; "" is a category it never saw)'
        )
    return 'send "" for an empty value (an empty cell is the category "" to a model trained on a table)'


def sent_value(value: np.ndarray) -> str:
    """The JSON a value that is no text was sent as: an object, a list, a number, ... (said
    'text or null values' of an object, and 'float64' of an empty list)."""
    if value.size == 0:
        return "an empty list: send one value a row"
    item = next((v for v in value.flat if not isinstance(v, str)), None)
    kinds = {dict: "a JSON object", list: "a list", bool: "true/false", type(None): "null"}
    kind = kinds.get(type(item)) or ("a number" if isinstance(item, int | float) else "a value")
    return f"{kind} where text goes: send each value as a JSON string"
