"""float16 answers written with their own fewest digits.

orjson writes a numpy float16 with float32's digits: 0.1 in float16 (0.0999755859375) came out
as `0.099975586` in predict's JSON, OIP's JSON `data` and batch's CSV and JSONL, where
docs/batch.md promises the fewest digits that read back to the same value of its own type
(`0.1`, as numpy prints it). A float16 array is written as the float64 of its shortest text:
read back as float16 it is the same value. Other dtypes pass through as they are (orjson writes
float32 and float64 with their fewest digits already)."""

from __future__ import annotations

import numpy as np


def written(array: np.ndarray) -> np.ndarray:
    """`array` as it is to be serialised: a float16 one as the float64s of its shortest texts
    (numpy's str of a float16 is its fewest digits; `nan` and `inf` parse back as themselves)."""
    if array.dtype != np.float16:
        return array
    return array.astype(str).astype(np.float64)
