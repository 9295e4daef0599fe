"""Prediction cells read back to the very values the model produced, in CSV and in JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.runtime.batch.cells import csv_cells, json_cells
from functions.runtime.batch.scoring import OutputField


def random_finite(dtype: str, count: int, seed: int = 0) -> np.ndarray:
    """Any bit pattern of `dtype` that is a finite number: subnormals and extremes included."""
    width = np.dtype(dtype).itemsize
    raw = np.random.default_rng(seed).integers(0, 256, size=count * width, dtype=np.uint8)
    values = raw.view(dtype)
    return values[np.isfinite(values)]


def csv_texts(values: np.ndarray) -> list[list[str]]:
    field = OutputField("y", values.dtype.name, (values.shape[1],))
    return [cell.decode().split(",") for cell in csv_cells(field, values)]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_csv_floats_read_back_to_the_same_bits(dtype):
    values = random_finite(dtype, 40_000)[:24_000].reshape(-1, 8)
    texts = csv_texts(values)
    back = np.array([[float(t) for t in row] for row in texts]).astype(dtype)
    assert back.tobytes() == values.tobytes()


def test_floats_are_written_in_their_shortest_form():
    values = np.array([[0.1, 1e-7, 3.4e38, 2.0]], dtype=np.float32)
    assert csv_texts(values) == [["0.1", "1e-7", "3.4e+38", "2.0"]]
    assert csv_texts(np.array([[0.1, 1 / 3]])) == [["0.1", "0.3333333333333333"]]


def test_non_finite_values_are_spelled_as_python_spells_them():
    values = np.array([[1.5, np.nan, -np.inf], [np.inf, 2.0, -0.0]], dtype=np.float32)
    assert csv_texts(values) == [["1.5", "nan", "-inf"], ["inf", "2.0", "-0.0"]]
    field = OutputField("y", "float32", (3,))
    cells = json_cells(field, values)
    assert cells == ["[1.5, NaN, -Infinity]", "[Infinity, 2.0, -0.0]"]
    back = np.array([json.loads(cell) for cell in cells], dtype=np.float32)
    np.testing.assert_array_equal(back, values)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64", "uint64"])
def test_integers_are_written_exactly(dtype):
    info = np.iinfo(dtype)
    values = np.array([[info.min, 0, info.max], [-1 if info.min else 1, 7, 42]], dtype=dtype)
    assert csv_texts(values) == [[str(v) for v in row] for row in values.tolist()]


def test_booleans_are_one_and_zero_in_csv_and_true_false_in_json():
    values = np.array([[True, False], [False, True]])
    assert csv_texts(values) == [["1", "0"], ["0", "1"]]
    assert json_cells(OutputField("y", "bool", (2,)), values) == ["[true, false]", "[false, true]"]


def test_other_byte_orders_and_one_value_per_row():
    values = np.array([[0.5], [-2.25], [np.nan]], dtype=">f4")
    field = OutputField("y", "float32", ())
    assert csv_cells(field, values) == [b"0.5", b"-2.25", b"nan"]
    assert json_cells(field, values) == ["0.5", "-2.25", "NaN"]


def test_json_floats_read_back_to_the_same_bits():
    values = random_finite("float32", 4000, seed=1)[:3000].reshape(-1, 3)
    cells = json_cells(OutputField("y", "float32", (3,)), values)
    back = np.array([json.loads(cell) for cell in cells]).astype(np.float32)
    assert back.tobytes() == values.tobytes()


def test_empty_chunks_and_empty_rows():
    assert csv_cells(OutputField("y", "float32", (2,)), np.zeros((0, 2), np.float32)) == []
    assert json_cells(OutputField("y", "float32", (2,)), np.zeros((0, 2), np.float32)) == []
    assert csv_cells(OutputField("y", "float32", (0,)), np.zeros((2, 0), np.float32)) == [b"", b""]


def test_csv_text_cells_with_line_breaks_are_quoted():
    """csv_quote wrote 'a\rb' and 'c\nd' bare: the LF split the output row in two."""
    texts = ["a\rb", "c\nd", "e\r\n", "plain", 'say "hi", then go']
    field = OutputField("y", "object", ())
    cells = csv_cells(field, np.array(texts, dtype=object))
    assert cells == [b'"a\rb"', b'"c\nd"', b'"e\r\n"', b"plain", b'"say ""hi"", then go"']
