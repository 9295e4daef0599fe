"""A wide DataFrame-style model (one input a column, skl2onnx's default) split into its numeric
columns in time linear in its columns: `InputColumns.numeric()` and the drift baseline's fit
listed the string columns again for every column (2,250,000 steps for 1,500 columns, ~1 s of a
training run's card and baseline, and of each serving load's drift monitor)."""

from __future__ import annotations

import time

import numpy as np

from functions.runtime.input_columns import InputColumns
from functions.runtime.manifest import TensorSpec

COLUMNS = 5_000  # quadratic: 25,000,000 steps (tens of seconds); linear: milliseconds


def test_the_numeric_columns_of_a_wide_table_are_found_at_once() -> None:
    specs = tuple(
        TensorSpec(f"c{i}", "string" if i % 4 == 3 else "float32", (-1, 1)) for i in range(COLUMNS)
    )
    columns = InputColumns(specs, (1,) * COLUMNS, tuple(spec.name for spec in specs))
    began = time.monotonic()
    numeric = columns.numeric()
    took = time.monotonic() - began
    assert numeric.names == tuple(f"c{i}" for i in range(COLUMNS) if i % 4 != 3)
    assert numeric.widths == (1,) * (COLUMNS * 3 // 4) and not numeric.strings
    assert numeric.dtype == np.float32
    assert took < 1.0, took
