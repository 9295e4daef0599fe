"""Typed tensors whose integers must keep their values as floats (validation.py's casts)."""

from __future__ import annotations

import numpy as np

from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import TensorSpec


def exact_in_float(spec: TensorSpec, value: np.ndarray, target: np.dtype[np.generic]) -> None:
    """numpy calls int64 -> float64 a safe cast, yet integers past 2^53 round (an INT64
    9007199254740993 sent to an FP64 input was answered as ...992, with a 200): a typed
    tensor's integers must each have the float's exact value."""
    bits = exact_bits(target)
    if value.size == 0 or value.dtype.itemsize * 8 <= bits:
        return
    limit = 2**bits
    wide = value.astype(object) if value.dtype.kind == "u" else value
    outside = np.flatnonzero((wide > limit) | (wide < -limit))
    if not len(outside):
        return
    at = [int(i) for i in np.unravel_index(int(outside[0]), value.shape)]
    raise InvalidInput(
        f"input '{spec.name}' is {_named(spec.dtype)}; {_named(str(value.dtype))} value "
        f"{value.flat[outside[0]]} at "
        f"index {at} has no exact {spec.dtype} value (integers past 2^{bits} round): send "
        f"{spec.dtype} values"
    )


def _named(dtype: str) -> str:
    """A typed tensor's element type as its sender knows it: `FP64 (float64)`."""
    entry = BY_NAME.get(dtype)
    return f"{entry.oip} ({dtype})" if entry is not None else dtype


def exact_bits(target: np.dtype[np.generic]) -> int:
    """The float type's exact integers: every one up to 2^this (24 for float32)."""
    return int(np.finfo(target.str).nmant) + 1


def inexact_rows(rows: np.ndarray, target: np.dtype[np.generic]) -> np.ndarray:
    """A batch's rows (one per row, flattened) holding an integer `target`, a float, has no
    exact value for: bad rows, as `exact_in_float` refuses such a tensor (an int64 NPY with
    2**62 was scored rounded to float32, unsaid). All False for a type whose every value fits."""
    bits = exact_bits(target)
    if rows.dtype.kind not in "iu" or rows.dtype.itemsize * 8 - (rows.dtype.kind == "i") <= bits:
        return np.zeros(len(rows), dtype=bool)
    limit = 2**bits
    wide = rows.astype(object) if rows.dtype.kind == "u" else rows
    return np.asarray(((wide > limit) | (wide < -limit)).any(axis=1), dtype=bool)


def beyond_float_range(value: np.ndarray, target: np.dtype[np.generic]) -> str:
    """Why .astype to a float `target` would change the values sent (`: 1e+39 is out of
    float32's range ...`), else "": a typed FP64 1e39 for an FP32 input was told to send
    .astype('float32'), which sends inf."""
    if target.kind != "f" or value.dtype.kind not in "iuf" or value.size == 0:
        return ""
    top = float(np.finfo(target.str).max)
    with np.errstate(invalid="ignore", over="ignore"):
        sizes = np.abs(value.astype(np.float64))
    outside = np.flatnonzero(np.isfinite(sizes) & (sizes > top))
    if not len(outside):
        return ""
    return (
        f": {value.flat[outside[0]].item()!r} is out of {target}'s range (at most {top:.8g} either "
        f"way; .astype('{target}') would send inf): send values {target} can hold"
    )
