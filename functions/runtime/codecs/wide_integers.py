"""64-bit integers in JSON: exact past 2^53, where float64 (numpy's reading of a mixed list,
and any JSON float) holds only every integer below 2^53 (9007199254740993 reads as ...992)."""

from __future__ import annotations

import re

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import TensorSpec

EXACT_IN_FLOAT64 = 2**53  # float64 holds every integer below this one; 2**53 + 1 reads as it


def rounded_float(value: object, dtype: str) -> bool:
    """A JSON float for a 64-bit integer that may not be the number written (past 2^53, in the
    type's range: one outside it is refused as out of range, which says more)."""
    if type(value) is not float or not value.is_integer() or abs(value) < EXACT_IN_FLOAT64:
        return False
    low, high = (0.0, 2.0**64) if dtype.lower() == "uint64" else (-(2.0**63), 2.0**63)
    return low <= value < high


def beyond_64_bits(value: object) -> bool:
    """Whether `value` is what orjson reads for a JSON integer beyond 64 bits: a float (its
    integers stop at -2^63 and 2^64 - 1), so a field that wants an integer can say the number
    is out of its range rather than "not an integer" (the client sent exactly an integer).
    For refusal branches only: a request that passes never pays for it."""
    return type(value) is float and value.is_integer() and abs(value) >= 2.0**63


# The most digits of an integer a float holds (its largest is 1.8e308).
FLOAT_DIGITS = 309
# A JSON integer of 19 digits or more (beyond 64 bits needs them), not part of a float.
_LONG_INTEGER = re.compile(rb"(?<![\w.+-])-?[0-9]{19,}(?![\w.])")


def as_typed(value: object, body: bytes | None = None) -> str:
    """`value` in a refusal as the caller wrote it: orjson reads a JSON integer beyond 64 bits
    as the float nearest it, which `repr` shows as 1e+23 for the 100000000000000000000000 sent.
    Its digits are found again in `body` (the JSON the value came from), else the float's
    shortest digits as an integer. Any other value: its `repr`. For refusal branches only."""
    if not beyond_64_bits(value):
        return repr(value)
    assert isinstance(value, float)
    from decimal import Decimal  # a refusal's branch: not worth ~1 ms of every cold start

    return _digits(value, body) or f"{Decimal(repr(value)):f}"


def written_as_integer(value: object, body: bytes | None) -> bool:
    """Whether `value`, orjson's float for a number beyond 64 bits, was written in `body` as an
    integer's digits (not `1e19` nor `1.5e300`, which are floats the caller wrote)."""
    return beyond_64_bits(value) and _digits(value, body) is not None


def _digits(value: object, body: bytes | None) -> str | None:
    for match in _LONG_INTEGER.finditer(body or b""):
        if len(match[0]) > FLOAT_DIGITS + 1:  # no float's; and past 4,300 digits int() raises
            continue  # ValueError: a 500, for a refusal whose body held such digits anywhere
        try:
            written = float(int(match[0]))
        except OverflowError:  # 309 digits past float's largest (it was a 500 too)
            continue
        if written == value:
            return match[0].decode()
    return None


def below_int64(value: float, body: bytes | None) -> bool:
    """Whether `value`, a float that rounded_float took for a rounded one, is orjson's reading
    of a JSON integer just below INT64's minimum in `body`: from -2^63 - 1 to about -2^63 - 1024
    it reads them as the float -2^63, in range, and the caller who wrote an integer was told to
    write an integer. The refusal is then "out of range", as one further below is told."""
    if value != -(2.0**63):
        return False
    return any(  # 20 characters: "-" and 19 digits (JSON has no leading zeros)
        len(match[0]) == 20 and int(match[0]) < -(2**63) and float(int(match[0])) == value
        for match in _LONG_INTEGER.finditer(body or b"")
    )


def float_past_2_53(what: str, dtype: str, value: float) -> str:
    """The 422 for a 64-bit integer sent as a JSON float that may have been rounded."""
    return (
        f"{what} is {dtype}: a JSON float (a decimal point or exponent) past 2^53 was read as "
        f"{int(value)}, maybe not the value sent (floats hold integers exactly only below "
        "2^53, 9007199254740992); write it as an integer"
    )


# numpy gives float64 for a list mixing ints below and above int64's range, exact only to 2**53.
WIDE_INTEGERS = frozenset({"int64", "uint64"})


def exact_json_integers(
    value: object, array: np.ndarray, spec: TensorSpec, body: bytes | None = None
) -> np.ndarray:
    """JSON integers past 2**53 as exact integers of the input's type, whole floats beside them
    as integers too (6.0 means 6, as validation reads it); else the array as it is. `body`:
    the JSON `value` came from, to tell an integer below int64's range from a rounded float."""
    if not array.size or float(np.abs(array).max()) < float(EXACT_IN_FLOAT64):
        return array
    items = list(np.asarray(value, dtype=object).flat)
    rounded = next((i for i in items if rounded_float(i, spec.dtype)), None)
    if rounded is not None and below_int64(rounded, body):
        raise InvalidInput(_outside(spec))
    if rounded is not None:  # 9007199254740993.0 reads as ...992: answered for another value
        raise InvalidInput(float_past_2_53(f"input '{spec.name}'", spec.dtype, rounded))
    if not any(type(item) is int for item in items):
        return array  # the client sent floats: validation takes whole ones in range
    if not all(isinstance(item, int) or float(item).is_integer() for item in items):
        return array  # a fraction, infinity or NaN: validation names it
    try:
        return np.array([int(item) for item in items], dtype=spec.dtype).reshape(array.shape)
    except OverflowError:
        raise InvalidInput(_outside(spec)) from None


def _outside(spec: TensorSpec) -> str:
    return f"input '{spec.name}' expects {spec.dtype}; values are outside its range"
