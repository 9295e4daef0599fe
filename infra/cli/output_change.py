"""When a `publish --quantize` variant's answer for a row is "the same" as its source's.

A label is the same when it is equal. A value (one a row) compared on --data is the same within
SAME_VALUE_RTOL, and on made-up rows within PROBE_VALUE_RTOL, of it or near 0 of the typical
value. A row of several values and no classes (an embedding, raw scores, several targets) is the
same when the distance between the two rows is at most ROW_RTOL of the source row's length (L2;
near 0, of the median row's): such outputs were scored by nothing, so a variant 3.9x off (fp16
clamping a weight) was published without a word.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from functions.runtime.manifest import ModelManifest

# A regressor's value is the same answer within this share of it (or, near 0, of the median
# absolute value): compared exactly, float32 outputs of two files (or of one file batched
# otherwise) were never equal, and a variant within 0.16 of targets 25-350 had a share of 0.
SAME_VALUE_RTOL = 1e-3
# On made-up rows (features at scales 0 to 10,000) a value may move by 1% before it counts.
PROBE_VALUE_RTOL = 0.01
# A row of several values: 2% of its length. int8 moves a healthy model's rows by about 1%
# (an MLP and a CNN embedding on made-up rows: median 0.8%, at most 1.23%), so at 1% a tenth
# of their rows counted as changed and publish warned on them; broken variants move most rows
# by far more (fp16 clamping a weight: 290%; an int8 LSTM encoder: a third of rows over 2%).
ROW_RTOL = 0.02
# Where the row is much shorter than most (a made-up row of zeros), its distance is measured
# against this share of the median row's length.
ROW_FLOOR = 0.01


def same_share(before: list[Any], after: list[Any], *, classified: bool) -> float:
    """The share of rows answered the same: the label, or a value within SAME_VALUE_RTOL."""
    if not before:
        return 1.0
    if classified:
        return float(np.mean([a == b for a, b in zip(before, after, strict=True)]))
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    # The values' typical size: their median, else (most are 0: counts, demand) their mean; a
    # median of 0 made the tolerance 0 and a 0 answered as 1e-6 "another answer".
    scale = float(np.median(np.abs(a))) or float(np.mean(np.abs(a)))
    close = np.isclose(b, a, rtol=SAME_VALUE_RTOL, atol=SAME_VALUE_RTOL * scale, equal_nan=True)
    # A row of a multi-output regressor is the same when all its values are.
    return float(np.mean(close.reshape(len(close), -1).all(axis=1)))


def relative_distances(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Per row of two (rows, width) arrays: |after - before| (L2) over the source row's length,
    or ROW_FLOOR of the median length where that is more; values equal in both (an inf, a NaN
    in both) add nothing, and one finite where the other is not makes the row inf."""
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.where(same, 0.0, after - before)
        distance = np.linalg.norm(np.nan_to_num(diff, nan=np.inf), axis=1)
        length = np.linalg.norm(np.where(np.isfinite(before), before, 0.0), axis=1)
        floor = ROW_FLOOR * float(np.median(length)) if len(length) else 0.0
        scale = np.maximum(length, floor)
        return np.where(distance == 0, 0.0, distance / np.where(scale > 0, scale, 0.0))


def _cosines(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Each row's cosine similarity, for the rows both answered finite and not all 0 (rows all
    0 in both count 1)."""
    finite = np.isfinite(before).all(axis=1) & np.isfinite(after).all(axis=1)
    a, b = before[finite], after[finite]
    lengths = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    zero = (np.abs(a).sum(axis=1) == 0) & (np.abs(b).sum(axis=1) == 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a * b).sum(axis=1) / lengths
    kept: np.ndarray = np.where(zero, 1.0, cos)[zero | (lengths > 0)]
    return kept


def _figure(value: float) -> float | None:
    """A figure for the manifest's JSON, which holds no inf or NaN."""
    return round(value, 6) if math.isfinite(value) else None


def changed_values(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Which rows of (rows, width) values changed: a value by over PROBE_VALUE_RTOL where there is
    one a row, the row by over ROW_RTOL of its length where there are several."""
    if before.shape[1] == 1:
        a, b = before[:, 0], after[:, 0]
        finite = a[np.isfinite(a)]
        scale = float(np.median(np.abs(finite))) if finite.size else 0.0
        rtol = PROBE_VALUE_RTOL
        close: np.ndarray = np.isclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
        return ~close
    changed: np.ndarray = relative_distances(before, after) > ROW_RTOL
    return changed


def value_change(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """How far the variant's (rows, width) values are from the source's: the rows changed
    (`changed_values`), the largest difference and relative distance, and for several values a
    row the median and lowest cosine similarity."""
    if not len(before):
        return {"rows": 0, "changed": 0}
    with np.errstate(invalid="ignore"):
        gap = np.abs(after - before)
    gap = np.where((before == after) | (np.isnan(before) & np.isnan(after)), 0.0, gap)
    record: dict[str, Any] = {
        "rows": len(before),
        "changed": int(changed_values(before, after).sum()),
        "width": int(before.shape[1]),
        "max_abs_output_diff": _figure(float(np.nan_to_num(gap, nan=np.inf).max())),
        "max_relative_change": _figure(float(relative_distances(before, after).max())),
    }
    cos = _cosines(before, after) if before.shape[1] > 1 else np.empty(0)
    if cos.size:
        record["median_cosine"] = _figure(float(np.median(cos)))
        record["min_cosine"] = _figure(float(cos.min()))
    return record


def outputs_only(manifest: ModelManifest) -> bool:
    """Whether --data only compared the variant's outputs with its source's (`compare_on_data`):
    nothing to score against labels, so the card has no metrics."""
    quantization = manifest.extras.get("quantization")
    evaluation = quantization.get("evaluation") if isinstance(quantization, dict) else None
    return isinstance(evaluation, dict) and evaluation.get("compared") == "outputs"
