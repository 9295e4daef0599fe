"""How an input's refusal is worded: a tensor as messages show it, a missing value's 422, and
the hints that name the likely fix (pixels already scaled, channels on the other side, a batch
axis the export fixed). Shared by request validation, the codecs, batch files and the CLI."""

from __future__ import annotations

import numpy as np

from functions.runtime.manifest import TensorSpec


def number_word(dtype: str) -> str:
    """What a JSON value of a `dtype` input must be: true or false for a bool input, which takes
    JSON's literals only (1/0 and "true" are refused), a number for any other. A bool input's
    refusals said "must be a number (bool)" and "send a number", which no bool input takes."""
    return "true or false" if dtype == "bool" else "a number"


def describe(spec: TensorSpec) -> str:
    """`x: float32 [-1, 4]`, the way error messages show an expected tensor."""
    return f"{spec.name}: {spec.dtype} {list(spec.shape)}"


def scaled_pixels_hint(target: np.dtype, value: np.ndarray) -> str:
    """For a uint8 model (pixels, scaled inside the graph) sent pixels already scaled to [0, 1],
    the usual mistake with such an export: what to send instead."""
    if target != np.uint8 or not np.isfinite(value).all() or value.min() < 0 or value.max() > 1:
        return ""
    return (
        "; these look like pixels scaled to [0, 1]: this model takes uint8 pixels 0-255 "
        "(its scaling is in the graph)"
    )


def fixed_batch_hint(spec: TensorSpec, axis: int, shared: bool, advice: str) -> str:
    """For rows refused by a batch axis the export fixed (torch.onnx.export without dynamic
    axes, where the model cannot be run a row at a time): how to export it instead."""
    if axis != 0 or (spec.rank < 2 and spec.shape[0] != 1 and not shared):
        return ""  # a one-dimensional input of several values is one row, not a batch
    return (
        f"; if that is its batch axis, the export fixed it (no dynamic batch axis): send "
        f"{spec.shape[0]} row(s) a request, or export again with one ({advice})"
    )


def channels_hint(want: tuple[int, ...], got: tuple[int, ...], *, one: bool = False) -> str:
    """For a batch of images whose channels sit on the other side from the model's (numpy and
    PIL give [H, W, C], torch models take [C, H, W]): what they look like and the fix. `one`:
    `got` is one image given a batch axis of 1 (a batch file's row), so the fix is per image."""
    if len(want) != 4 or len(got) != 4:
        return ""

    def fits(dims: tuple[int, ...], sent: tuple[int, ...]) -> bool:
        return all(d in (-1, s) for d, s in zip(dims, sent, strict=True))

    if 0 < want[1] <= 4 and fits((want[2], want[3], want[1]), got[1:]):
        fix = "image.transpose(2, 0, 1)" if one else "images.transpose(0, 3, 1, 2)"
        return (
            "; these look like channels-last images [H, W, C]: this model takes channels first "
            f"[C, H, W] (numpy: {fix})"
        )
    if 0 < want[3] <= 4 and fits((want[3], want[1], want[2]), got[1:]):
        fix = "image.transpose(1, 2, 0)" if one else "images.transpose(0, 2, 3, 1)"
        return (
            "; these look like channels-first images [C, H, W]: this model takes channels last "
            f"[H, W, C] (numpy: {fix})"
        )
    return ""


def grey_axis_missing(want: tuple[int, ...], got: tuple[int, ...], *, one: bool = False) -> str:
    """For a greyscale image model ([N, 1, H, W] or [N, H, W, 1]) sent images as numpy and PIL
    hold them, [N, H, W] (or one [H, W]), without the channel axis of 1: the fix, else "".
    `one`: `got` is one row (a JSONL line's image, [H, W]), whose fix adds the channel only."""
    if len(want) != 4 or len(got) not in ((2,) if one else (2, 3)):
        return ""
    if want[1] == 1:
        sides, fix = want[2:], ("image[None, None]", "images[:, None]", "image[None]")
    elif want[3] == 1:
        sides, fix = want[1:3], ("image[None, ..., None]", "images[..., None]", "image[..., None]")
    else:
        return ""
    if not all(d in (-1, s) for d, s in zip(sides, got[-2:], strict=True)):
        return ""
    if one:
        return (
            "; this looks like a greyscale image [H, W] without its channel axis of 1, which "
            f"this model takes (numpy: {fix[2]}.tolist())"
        )
    what = (
        "greyscale images [N, H, W] without their"
        if len(got) == 3
        else "one greyscale image [H, W] without its batch axis and its"
    )
    return (
        f"; these look like {what} channel axis of 1, which this model takes "
        f"(numpy: {fix[len(got) - 2]})"
    )


def missing_value(where: str, sent: str) -> str:
    """The 422 for a missing value (`sent`: null, NaN, an empty CSV cell) to a model that refuses
    it, saying how a model that takes them is published (whether it can is the model's call).
    It named "scikit-learn's trees" as such a model, whose skl2onnx export sends every missing
    value one way, answering otherwise than their predict (tree_inputs.py)."""
    return (
        f"{where} is a missing value ({sent}); this model takes finite numbers only: fill it "
        "in, or publish a model whose graph takes them (`aiaas publish` reads an XGBoost or "
        "LightGBM export's trees and a SimpleImputer as taking them; `--allow-nonfinite` for "
        "another graph, but not skl2onnx's scikit-learn forests, which send every missing "
        "value one way)"
    )


def captured_gap(where: str, sent: str) -> str:
    """`missing_value` for a file `aiaas capture export` wrote (its time, request_id and version
    columns): such a cell is a field denied at capture, not a missing value a request sent (the
    model refused those, so none was captured); `--allow-nonfinite` was the advice."""
    return (
        f"{where} is {sent}: this file is a capture export, which writes a field denied at "
        "capture (`aiaas capture MODEL --deny`) empty in every row, and a feature the row's "
        "version did not read; this model takes finite numbers only: fill the column in to "
        "score these rows"
    )
