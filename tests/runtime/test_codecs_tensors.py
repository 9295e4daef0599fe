"""Tensor <-> bytes and JSON data (functions/runtime/codecs/tensors.py)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from functions.runtime.codecs import tensors
from functions.runtime.dtypes import BY_OIP, TABLE
from functions.runtime.errors import BadRequest, InvalidInput


@pytest.mark.parametrize("dtype", [d for d in TABLE if d.name != "string"], ids=lambda d: d.oip)
def test_bytes_round_trip_every_numeric_type(dtype: object) -> None:
    entry = BY_OIP[dtype.oip]  # type: ignore[attr-defined]
    array = (np.arange(6) % 2 if entry.name == "bool" else np.arange(6)).astype(entry.numpy)
    array = array.reshape(2, 3)
    raw = tensors.to_bytes(array)
    assert len(raw) == 6 * entry.numpy.itemsize
    back = tensors.from_bytes(raw, entry, (2, 3), "t")
    np.testing.assert_array_equal(back, array)


def test_to_bytes_is_little_endian_and_c_order_whatever_the_layout() -> None:
    big = np.array([[1, 2], [3, 4]], dtype=">i4").T  # big-endian and Fortran-ordered
    assert tensors.to_bytes(big) == struct.pack("<4i", 1, 3, 2, 4)


def test_from_bytes_reads_little_endian() -> None:
    array = tensors.from_bytes(struct.pack("<2d", 1.5, -2.0), BY_OIP["FP64"], (2,), "t")
    assert array.tolist() == [1.5, -2.0]


def test_bytes_tensors_are_length_prefixed_utf8() -> None:
    array = np.array(["hé", "", b"raw"], dtype=object)
    raw = tensors.to_bytes(array)
    assert (
        raw
        == struct.pack("<I", 3)
        + "hé".encode()
        + struct.pack("<I", 0)
        + struct.pack("<I", 3)
        + b"raw"
    )
    back = tensors.from_bytes(raw, BY_OIP["BYTES"], (3,), "t")
    assert back.tolist() == ["hé", "", "raw"]


def test_numpy_unicode_arrays_encode_as_bytes() -> None:
    assert tensors.to_bytes(np.array(["ab"])) == struct.pack("<I", 2) + b"ab"


def test_from_bytes_size_must_match_the_shape() -> None:
    with pytest.raises(InvalidInput) as info:
        tensors.from_bytes(b"\0" * 10, BY_OIP["FP32"], (3,), "x")
    assert info.value.message == "tensor 'x' has 10 bytes of data; shape [3] of FP32 needs 12"


def test_bytes_element_count_must_match_the_shape() -> None:
    with pytest.raises(InvalidInput) as info:
        tensors.from_bytes(struct.pack("<I", 1) + b"a", BY_OIP["BYTES"], (2,), "s")
    assert info.value.message == "tensor 's' has 1 elements; shape [2] needs 2"


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (None, "tensor 't' needs a shape: a list of non-negative integers"),
        ("1,2", "tensor 't' needs a shape: a list of non-negative integers"),
        ([1, -1], "tensor 't' needs a shape: a list of non-negative integers"),
        ([1.0], "tensor 't' needs a shape: a list of non-negative integers"),
        ([True], "tensor 't' needs a shape: a list of non-negative integers"),
    ],
)
def test_bad_shape_is_400(shape: object, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        tensors.check_shape(shape, "t")
    assert info.value.message == message


def test_huge_shape_is_rejected_before_any_allocation() -> None:
    with pytest.raises(InvalidInput) as info:
        tensors.check_shape(
            [1 << 40, 0], "t"
        )  # the zero would make it empty; the check stops first
    assert "over 67108864 elements" in info.value.message


def test_empty_dimensions_are_allowed() -> None:
    assert tensors.check_shape([0, 64], "t") == (0, 64)


@pytest.mark.parametrize("name", [3, "FLOAT32", "fp32", ""])  # None: says "no datatype"
def test_unknown_datatype_is_400(name: object) -> None:
    with pytest.raises(BadRequest) as info:
        tensors.datatype(name, "t")
    assert info.value.message.startswith(f"tensor 't' has datatype {name!r}; expected one of [")
    assert "'FP32'" in info.value.message


def test_json_data_nested_or_flat_and_a_scalar() -> None:
    flat = tensors.from_json_data([1, 2, 3, 4], BY_OIP["INT32"], (2, 2), "t")
    nested = tensors.from_json_data([[1, 2], [3, 4]], BY_OIP["INT32"], (2, 2), "t")
    np.testing.assert_array_equal(flat, nested)
    assert flat.dtype == np.int32
    assert tensors.from_json_data(7.5, BY_OIP["FP32"], (1,), "t").tolist() == [7.5]


def test_json_uint64_keeps_values_above_int64() -> None:
    values = [0, 2**63, 2**64 - 1]
    array = tensors.from_json_data(values, BY_OIP["UINT64"], (3,), "t")
    assert array.dtype == np.uint64
    assert [int(v) for v in array] == values


def test_json_uint64_rejects_fractions_and_negative_values() -> None:
    with pytest.raises(InvalidInput, match="data must be integers"):
        tensors.from_json_data([0.5, 2**64 - 1], BY_OIP["UINT64"], (2,), "t")
    with pytest.raises(InvalidInput, match="out of range for UINT64"):
        tensors.from_json_data([-1, 2**64 - 1], BY_OIP["UINT64"], (2,), "t")


def test_json_ragged_data_is_422_saying_what_to_send() -> None:
    """It echoed numpy's "setting an array element with a sequence. The requested array has an
    inhomogeneous shape after 1 dimensions..." where the simple API says what to fix."""
    with pytest.raises(InvalidInput) as info:
        tensors.from_json_data([[1, 2], [3]], BY_OIP["FP32"], (3,), "t")
    assert info.value.message == (
        "tensor 't' data is ragged: nested lists of unequal lengths; send the 3 values of "
        "shape [3] as one flat list, row-major, or as lists of equal lengths"
    )
    with pytest.raises(InvalidInput) as info:  # BYTES: it said "send strings", which they are
        tensors.from_json_data([["a"], ["b", "c"]], BY_OIP["BYTES"], (1, 2), "t")
    assert info.value.message.startswith("tensor 't' data is ragged: nested lists of unequal")
    deep: object = 1
    for _ in range(70):
        deep = [deep]
    with pytest.raises(InvalidInput) as info:
        tensors.from_json_data(deep, BY_OIP["FP32"], (1, 2), "t")
    assert info.value.message == (
        "tensor 't' data is ragged: lists nested over 64 deep; send the 2 values of "
        "shape [1, 2] as one flat list, row-major, or as lists of equal lengths"
    )


def test_json_true_or_false_among_numbers_is_422() -> None:
    """numpy reads [1, true] as [1, 1]: a true among numbers was served as 1."""
    for name, data, kind in [
        ("FP32", [[1.5, True]], "numbers"),
        ("INT64", [[1, False]], "integers"),
        ("UINT64", [[2**64 - 1, True]], "integers"),
    ]:
        with pytest.raises(InvalidInput) as info:
            tensors.from_json_data(data, BY_OIP[name], (1, 2), "t")
        assert info.value.message == f"tensor 't' is {name}: data must be {kind}, not true/false"
    # a header with no true/false literal is not searched: the caller says so
    assert tensors.from_json_data([1, 2], BY_OIP["INT64"], (2,), "t", bools=False).tolist() == [
        1,
        2,
    ]


def test_to_json_data_is_flat_and_decodes_bytes() -> None:
    assert tensors.to_json_data(np.arange(4).reshape(2, 2)) == [0, 1, 2, 3]
    assert tensors.to_json_data(np.array([b"a", "b"], dtype=object)) == ["a", "b"]


def test_json_nulls_are_nan_in_float_tensors_only() -> None:
    # null is JSON's missing value: NaN in a float tensor (validation then refuses it for a
    # model whose inputs must be finite); integer and BOOL tensors have no missing value.
    for name in ("FP16", "FP32", "FP64"):
        array = tensors.from_json_data([[1, None], [None, 2.5]], BY_OIP[name], (2, 2), "x")
        assert array.dtype == BY_OIP[name].numpy
        np.testing.assert_array_equal(array, [[1, np.nan], [np.nan, 2.5]])
    with pytest.raises(InvalidInput, match="tensor 'x' is INT64: data must be integers"):
        tensors.from_json_data([1, None], BY_OIP["INT64"], (2,), "x")
    with pytest.raises(InvalidInput, match="tensor 'x' is FP32: data must be numbers"):
        tensors.from_json_data([None, "a"], BY_OIP["FP32"], (2,), "x")
