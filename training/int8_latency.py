"""How much slower an int8 variant runs a row than its float model: one measure for
`aiaas train` (export.quantize, which refuses a slower int8 unless it quantizes for size) and
`aiaas publish --quantize int8` (which says so), so both judge the same file alike. No torch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

# int8 kept for speed must not be slower than float32 by more than this (CPU int8 kernels for
# convolutions are often slower than the float ones for small models).
MAX_INT8_SLOWDOWN = 1.1
LATENCY_RUNS = 200
# Publish may time a model of GBs (a second a row): it stops after this many seconds, and
# after no fewer than MIN_RUNS runs of each file.
MIN_RUNS = 5

Feeds = np.ndarray | Mapping[str, np.ndarray]


def row_latency_us(
    float_path: Path, int8_path: Path, row: Feeds, budget_s: float | None = None
) -> tuple[float, float]:
    """Median single-row latency of both files, interleaved so machine noise hits both alike,
    each in a session as serving opens it; `budget_s`: stop timing after that long."""
    from functions.runtime.model import session_options

    sessions = [
        ort.InferenceSession(
            str(p), session_options(p.stat().st_size), providers=["CPUExecutionProvider"]
        )
        for p in (float_path, int8_path)
    ]
    feeds = [
        dict(row) if isinstance(row, Mapping) else {s.get_inputs()[0].name: row} for s in sessions
    ]
    for i, sess in enumerate(sessions):  # the first run allocates; it is no row's latency
        sess.run(None, feeds[i])
    samples: list[list[float]] = [[], []]
    began = time.perf_counter()
    for run in range(LATENCY_RUNS):
        if budget_s is not None and run >= MIN_RUNS and time.perf_counter() - began > budget_s:
            break
        for i, sess in enumerate(sessions):
            start = time.perf_counter()
            sess.run(None, feeds[i])
            samples[i].append(time.perf_counter() - start)
    return float(np.median(samples[0]) * 1e6), float(np.median(samples[1]) * 1e6)
