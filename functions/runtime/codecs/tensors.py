"""Tensor <-> bytes and JSON data for every Open Inference Protocol datatype.

BYTES elements travel as UTF-8 strings in JSON and, in the binary extension, as a 4-byte
little-endian length followed by the raw bytes (the Triton convention).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from functions.runtime.codecs.json_bools import holds_bool
from functions.runtime.codecs.nulls import first_null
from functions.runtime.codecs.wide_integers import (
    EXACT_IN_FLOAT64,
    below_int64,
    beyond_64_bits,
    float_past_2_53,
    rounded_float,
)
from functions.runtime.dtypes import BY_OIP, DType
from functions.runtime.errors import BadRequest, InvalidInput

# An upper bound on elements one tensor may declare, checked before any allocation.
MAX_ELEMENTS = 64 * 1024 * 1024
# numpy refuses arrays of more than 64 dimensions; no model takes anywhere near that many.
MAX_RANK = 32
ALIGNMENT = 16  # binary tensors start here, as numpy's own arrays do (see from_bytes)
COPIED_BYTES = 64 * 1024  # binary tensors up to this size are always copied: cheaper than a look


def datatype(name: object, tensor: str) -> DType:
    if name is None:
        raise BadRequest(f"tensor '{tensor}' has no 'datatype'; give one of {sorted(BY_OIP)}")
    if not isinstance(name, str) or name not in BY_OIP:
        raise BadRequest(
            f"tensor '{tensor}' has datatype {name!r}; expected one of {sorted(BY_OIP)}"
        )
    return BY_OIP[name]


def check_shape(shape: object, tensor: str) -> tuple[int, ...]:
    """A declared shape: a list of non-negative ints with a sane element count."""
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        _refuse_beyond_64_bits(shape, tensor)
        raise BadRequest(f"tensor '{tensor}' needs a shape: a list of non-negative integers")
    if len(shape) > MAX_RANK:
        raise InvalidInput(
            f"tensor '{tensor}' declares {len(shape)} dimensions; at most {MAX_RANK} are allowed"
        )
    count = 1
    for index, dim in enumerate(shape):
        count *= dim
        if count > MAX_ELEMENTS:
            raise InvalidInput(
                f"tensor '{tensor}' declares shape {shape}: over {MAX_ELEMENTS} elements"
            )
        # After a 0 the count stays 0, but numpy refuses a dimension past 2**63 (or a byte size
        # past it) even for an empty array: bounded here, it is no 500 later.
        if dim > MAX_ELEMENTS:
            raise InvalidInput(
                f"tensor '{tensor}' declares shape {shape}: dimension {index} is over "
                f"{MAX_ELEMENTS}"
            )
    return tuple(shape)


def _refuse_beyond_64_bits(shape: object, tensor: str) -> None:
    """The 422 an over-large dimension gets, for one orjson read as a float (an integer beyond
    64 bits: `[0, 2**64]` was told it needs "a list of non-negative integers", which it was).
    Only on the refusal path: an accepted shape is checked by the one `all` above."""
    if not isinstance(shape, list):
        return
    # One pass: each dimension looked up in a list of the wide ones was quadratic, minutes for
    # a shape of a million `1e20`s.
    wide = [beyond_64_bits(d) and d > 0 for d in shape]
    if any(wide) and all(
        over or (isinstance(d, int) and not isinstance(d, bool) and d >= 0)
        for over, d in zip(wide, shape, strict=True)
    ):  # nothing else wrong with it: the size is its one problem
        raise InvalidInput(
            f"tensor '{tensor}' declares a shape whose dimension {wide.index(True)} is over "
            f"{MAX_ELEMENTS} (an integer beyond 64 bits)"
        )


def from_json_data(
    data: object,
    dtype: DType,
    shape: tuple[int, ...],
    tensor: str,
    *,
    bools: bool = True,
    body: bytes | None = None,
) -> np.ndarray:
    """A tensor from the JSON `data` field (nested or flat, row-major), in its declared shape.
    `bools=False`: the request has no true/false literal, so none is looked for. `body`: the
    JSON, where a refused number is looked for as it was written."""
    if data is None:  # wrapped as [None], it was counted as one element of the shape
        raise InvalidInput(f"tensor '{tensor}' has 'data': null; send its values as a list")
    if not isinstance(data, list):
        data = [data]
    try:
        if dtype.name == "string":
            array = np.array(data, dtype=object).reshape(-1)
            if any(isinstance(v, list) for v in array):  # lists of unequal lengths stay lists
                raise ValueError("inhomogeneous")
            # null is a missing text, as in a record by feature name: the model's missing
            # category where it has one, else validation's 422 saying to send "".
            if not all(isinstance(v, str) or v is None for v in array):
                raise InvalidInput(f"tensor '{tensor}' is BYTES: send strings")
        elif dtype.name == "bool":
            array = np.asarray(data).reshape(-1)
            if not array.size:  # `[]` is an empty tensor of any type
                array = array.astype(np.bool_)
            if array.dtype != np.bool_:
                raise InvalidInput(f"tensor '{tensor}' is BOOL: send true/false")
        else:
            raw = np.asarray(data).reshape(-1)
            if raw.size == 0:
                raw = raw.astype(dtype.numpy)
            if raw.dtype == object and dtype.numpy.kind == "f" and first_null(raw) is not None:
                # null is a missing value (NaN); validation refuses it for a model whose
                # inputs must be finite, saying so.
                raw = raw.astype(np.float64)
            if raw.dtype.kind == "f" and _rounds(raw, dtype):
                raw = _exact_integers(data, dtype, tensor, body)
            # 6.0 is 6 (JSON encoders write a float column so); 6.5 is no integer.
            kind = "integers" if dtype.numpy.kind in "iu" else "numbers"
            if raw.dtype.kind not in "iuf" or (
                raw.dtype.kind == "f" and dtype.numpy.kind in "iu" and not _whole(raw)
            ):
                raise InvalidInput(f"tensor '{tensor}' is {dtype.oip}: data must be {kind}")
            if bools and holds_bool(data):  # numpy read each true as 1, each false as 0
                raise InvalidInput(
                    f"tensor '{tensor}' is {dtype.oip}: data must be {kind}, not true/false"
                )
            with np.errstate(over="ignore", invalid="ignore"):
                array = raw.astype(dtype.numpy)
            if _out_of_range(array, raw, dtype):
                raise InvalidInput(_out_of_range_text(tensor, dtype))
    except ValueError as exc:  # numpy cannot stack the lists: say what it takes, not numpy's words
        raise InvalidInput(_ragged(tensor, shape, exc)) from None
    return _reshape(array, shape, tensor)


def _ragged(tensor: str, shape: tuple[int, ...], exc: ValueError) -> str:
    got = (
        "lists nested over 64 deep"
        if "maximum number of dim" in str(exc)
        else "nested lists of unequal lengths"
    )
    return (
        f"tensor '{tensor}' data is ragged: {got}; send the {math.prod(shape)} values of shape "
        f"{list(shape)} as one flat list, row-major, or as lists of equal lengths"
    )


def _whole(values: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return bool((np.isfinite(values) & (np.floor(values) == values)).all())


def _out_of_range(array: np.ndarray, raw: np.ndarray, dtype: DType) -> bool:
    if dtype.numpy.kind in "iu":
        return not np.array_equal(array, raw)
    # A finite number too large for FP16/FP32 would become infinity: say so, not "not finite".
    return bool(np.any(np.isinf(array) & np.isfinite(raw)))


def _out_of_range_text(tensor: str, dtype: DType) -> str:
    """The 422 for a value the type cannot hold, with the type's range (what the simple API says)."""
    numpy_type: np.dtype[Any] = dtype.numpy
    if numpy_type.kind in "iu":
        info = np.iinfo(numpy_type)
        span = f"[{info.min}, {info.max}]"
    else:
        span = f"±{float(np.finfo(numpy_type).max):.5g}"
    return f"tensor '{tensor}' has values out of range for {dtype.oip}: {span}"


def _rounds(raw: np.ndarray, dtype: DType) -> bool:
    """Whether float64 `raw` may have rounded integers meant for `dtype`: numpy reads a mix of
    ints and whole floats (6.0), or of int64 and uint64 values (0 and 2**64 - 1), as float64,
    which holds every integer only up to 2**53."""
    if dtype.numpy.kind not in "iu" or dtype.numpy.itemsize < 8 or not raw.size:
        return False
    return dtype.name == "uint64" or bool(np.abs(raw).max() >= EXACT_IN_FLOAT64)


def _exact_integers(
    data: object, dtype: DType, tensor: str, body: bytes | None = None
) -> np.ndarray:
    """A 64-bit integer tensor built from the JSON values themselves, not their float64."""
    exact = []
    for value in np.array(data, dtype=object).reshape(-1).tolist():
        if isinstance(value, float) and value.is_integer():
            if rounded_float(value, dtype.name) and below_int64(value, body):
                raise InvalidInput(_out_of_range_text(tensor, dtype))
            if rounded_float(value, dtype.name):  # 9007199254740993.0 reads as ...992
                raise InvalidInput(float_past_2_53(f"tensor '{tensor}'", dtype.oip, value))
            value = int(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"tensor '{tensor}' is {dtype.oip}: data must be integers")
        exact.append(value)
    try:
        return np.array(exact, dtype=dtype.numpy)
    except OverflowError:
        raise InvalidInput(_out_of_range_text(tensor, dtype)) from None


def _reshape(array: np.ndarray, shape: tuple[int, ...], tensor: str) -> np.ndarray:
    expected = math.prod(shape)
    if array.size != expected:
        raise InvalidInput(
            f"tensor '{tensor}' has {array.size} elements; shape {list(shape)} needs {expected}"
        )
    return array.reshape(shape)


def plain_bytes(dtype: DType, shape: tuple[int, ...]) -> int | None:
    """How many bytes a tensor of `dtype` and `shape` takes when `from_bytes` checks nothing
    but their count and copies them (numbers, at most COPIED_BYTES): found once a header, so a
    request reads them with `np.frombuffer(bytes(raw), dtype.wire).reshape(shape)` alone. None
    for BYTES (lengths in the data), BOOL (each byte checked) and big tensors."""
    if dtype.name in ("string", "bool"):
        return None
    expected = math.prod(shape) * dtype.numpy.itemsize
    return expected if expected <= COPIED_BYTES else None


def from_bytes(
    raw: bytes | memoryview, dtype: DType, shape: tuple[int, ...], tensor: str
) -> np.ndarray:
    """A tensor from its binary-extension bytes."""
    if dtype.name == "string":
        return _reshape(_unpack_strings(raw, tensor), shape, tensor)
    width = dtype.numpy.itemsize
    expected = math.prod(shape) * width
    if len(raw) != expected:
        raise InvalidInput(
            f"tensor '{tensor}' has {len(raw)} bytes of data; shape {list(shape)} of "
            f"{dtype.oip} needs {expected}"
        )
    # onnxruntime's reductions (ReduceSum, ReduceMean) answer the same values with other low
    # bits from data that starts off a 16-byte boundary, as it does in the body wherever the
    # JSON header's length puts it: a request's `id` one character longer changed the answer,
    # and a binary request answered other bits than the same one in JSON. So the data is run
    # from a copy aligned as numpy's own arrays (and a caller's) are. A small one is copied
    # into a bytes object (its data 16-byte aligned in CPython, as malloc's and pymalloc's
    # blocks are: ~0.05 us, a third of ndarray.copy(), and less than asking where the data
    # lies, ~1 us); a big one where it lies off the boundary.
    if expected <= COPIED_BYTES:
        array = np.frombuffer(bytes(raw), dtype=dtype.wire)
    else:
        array = np.frombuffer(raw, dtype=dtype.wire)
        if array.__array_interface__["data"][0] % ALIGNMENT:
            array = array.copy()
    # The extension's BOOL is one byte, 1 or 0; any other byte is a bool C++ leaves undefined.
    if dtype.name == "bool" and array.size and array.view(np.uint8).max() > 1:
        raise InvalidInput(
            f"tensor '{tensor}' is BOOL: each byte of its binary data must be 0 (false) or 1 (true)"
        )
    return array.reshape(shape)


def _unpack_strings(raw: bytes | memoryview, tensor: str) -> np.ndarray:
    view = memoryview(raw)
    items: list[str] = []
    offset = 0
    while offset < len(view):
        if offset + 4 > len(view):
            raise InvalidInput(f"tensor '{tensor}' BYTES data is truncated (length prefix)")
        (length,) = struct.unpack_from("<I", view, offset)
        offset += 4
        if offset + length > len(view):
            raise InvalidInput(f"tensor '{tensor}' BYTES element is longer than the data left")
        try:
            items.append(bytes(view[offset : offset + length]).decode("utf-8"))
        except UnicodeDecodeError as exc:  # named as the JSON form names it: which one, where
            raise InvalidInput(
                f"tensor '{tensor}' BYTES element {len(items)} is not UTF-8 text (byte "
                f"{exc.object[exc.start]:#04x} at offset {exc.start})"
            ) from None
        offset += length
    return np.array(items, dtype=object)


def to_bytes(array: np.ndarray) -> bytes:
    """The binary-extension bytes of a tensor (little-endian; BYTES length-prefixed)."""
    if array.dtype == object or array.dtype.kind in "US":
        parts = []
        for item in array.reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array.tobytes()  # C order, whatever the array's layout


def to_json_data(array: np.ndarray) -> Sequence[Any]:
    """A flat row-major list, as OIP's JSON `data` field carries it."""
    flat = array.reshape(-1)
    if flat.dtype == object:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]
    return flat.tolist()
