"""plain_numbers: the very float64 that float() gives for every value it accepts, else None."""

from __future__ import annotations

import decimal
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from functions.runtime.batch.numbers import SENTINEL, SENTINEL_TEXT, plain_numbers

TRICKY = [
    "0",
    "-0.0",  # the sign of zero survives
    "0e0",
    "-0e5",
    "-7",
    "1E5",
    "1e+5",
    "1e-7",
    "0.1",
    "0.30000000000000004",
    "9007199254740993",  # 2**53 + 1: rounds to even, as float() does
    "9007199254740995",
    "18446744073709551615",  # the largest 64-bit unsigned integer
    "2.2250738585072011e-308",  # subnormal boundary
    "4.9e-324",
    "2.4703282292062327e-324",  # just below half the smallest subnormal: 0
    "2.4703282292062328e-324",  # just above: the smallest subnormal
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1e-400",
    " 1.5",
    "2.5 ",
    "\t3",
]


def parse(lines: list[str], columns: int) -> np.ndarray | None:
    return plain_numbers([line.encode() for line in lines], columns)


def bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)


def expected(fields: list[str]) -> np.ndarray:
    return np.array([float(field) for field in fields])


def test_tricky_values_read_bit_for_bit_as_float_reads_them():
    matrix = parse([",".join(TRICKY)], len(TRICKY))
    assert matrix is not None and matrix.shape == (1, len(TRICKY))
    np.testing.assert_array_equal(bits(matrix[0]), bits(expected(TRICKY)))
    assert math.copysign(1.0, matrix[0, 1]) == -1.0


def test_rows_and_columns_keep_their_places():
    lines = ["1,2,3", "4.5,-6,7e1", "8,9,10"]
    matrix = parse(lines, 3)
    assert matrix is not None
    np.testing.assert_array_equal(matrix, [[1, 2, 3], [4.5, -6, 70], [8, 9, 10]])


def _halfway(value: float) -> str:
    """The exact decimal midpoint between `value` and the next float above it."""
    above = math.nextafter(value, math.inf)
    if math.isinf(above):
        above = math.nextafter(value, -math.inf)
    with decimal.localcontext() as context:
        context.prec = 1200  # binary fractions are exact in decimal: keep every digit
        middle = (decimal.Decimal(value) + decimal.Decimal(above)) / 2
        return format(middle, "e")


# -0.0 prints as the integer -0 in `g` format: that one is refused (tested below), not misread.
finite = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda v: v != 0 or math.copysign(1.0, v) > 0
)


@settings(max_examples=150, deadline=None)
@given(st.lists(finite, min_size=1, max_size=6))
def test_any_float_and_its_halfway_points_read_as_float_reads_them(values):
    fields = []
    for value in values:
        fields += [repr(value), f"{value:.25e}", f"{value:.3g}", _halfway(value)]
    assume(np.isfinite(expected(fields)).all())  # overflow to inf is refused (tested below)
    assume(SENTINEL not in expected(fields))  # refused (tested below)
    matrix = parse([",".join(fields)], len(fields))
    assert matrix is not None
    np.testing.assert_array_equal(bits(matrix[0]), bits(expected(fields)))


@pytest.mark.parametrize(
    "lines",
    [
        ['"1",2'],  # quoted: csv's job
        ["nan,2"],
        ["inf,2"],
        ["+1,2"],
        [".5,2"],
        ["1.,2"],
        ["1,"],  # empty field
        ["1_000,2"],  # float() takes it, the CSV reader refuses it
        ["1 2,3"],
        ["0x10,2"],
        ["1e400,2"],  # float() gives inf; simdjson refuses, numpy's parser takes it
        ["18446744073709551616,2"],  # beyond 64-bit integers: simdjson refuses, numpy takes it
        ["123456789012345678901234567890,2"],
        ["true,2"],
        ["null,2"],
        ["[1],2"],
        ["[1,2]"],  # a nested array whose numbers would count right
        ["1,[2", "3],4"],
        ["1,{}"],
        ["1,false"],
        ['1,"a"'],
        ["1,2 3"],
        ["\u0661,2"],  # an Arabic-Indic digit: float() takes it, not plain
        ["1,2", ""],  # a blank line
        ["1,2,3", "4"],  # ragged rows whose field count adds up
        ["1", "2,3,4"],
        ["1,2,3"],  # more fields than the header
        ["-0,2"],  # the JSON integer -0 loses its sign
        ["1,-0"],
        ["-0 ,2"],
        ["-0\t,2"],
        [f"{SENTINEL_TEXT.decode()},2"],  # the value that marks line ends: the careful path
        [f"1,{SENTINEL!r}"],
        ["1", f"{SENTINEL_TEXT.decode()},2"],  # would hide a missing field
    ],
)
def test_anything_but_plain_numbers_is_left_to_the_careful_path(lines):
    assert parse(lines, 2) is None
