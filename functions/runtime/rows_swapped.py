"""Whether a graph whose every input is fixed at 2 rows answers its rows apart: publish asks
where shapes alone cannot tell (`rows_apart`).

A GRU exported on one window of exactly 2 steps (`x [2, 12]` -> `logits [2]`, no batch axis)
and a batch fixed at 2 answering one logit a row (`fc(x).squeeze(-1)` on `x [2, 12]`) have the
same shapes; read as the second, one window was answered two sigmoid predictions. Swapping the
two rows of every input tells them apart: a batch answers the same two scores swapped, a window
read in the other order of steps does not (a mean over the steps answers the same two scores,
unswapped). One run of 2 rows each way, only for that shape.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from functions.runtime.dtypes import BY_NAME
from functions.runtime.manifest import TensorSpec

_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4
LENGTH = 7  # each dynamic dimension past the first (probe_outputs.py's length)


def rows_apart(
    session: ort.InferenceSession, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]
) -> bool | None:
    """False where swapping the 2 rows of every input does not swap the answers of each float
    output fixed at [2]; True where it does (or the two answers tie: nothing to tell); None where
    the shapes are not that ambiguous one, or the graph refuses made-up values."""
    pairs = [o.name for o in outputs if o.shape == (2,) and o.dtype.startswith("float")]
    if not pairs or not inputs or any(spec.shape[:1] != (2,) for spec in inputs):
        return None
    if any(spec.dtype == "string" for spec in inputs):
        return None
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in inputs:
        shape = tuple(dim if dim > 0 else LENGTH for dim in spec.shape)
        numpy = BY_NAME[spec.dtype].numpy
        if spec.dtype.startswith("float"):
            feeds[spec.name] = rng.standard_normal(shape).astype(numpy)
        else:  # an id or a flag: a row of each of two values, so that swapping moves something
            rows = np.array([0, 1]).astype(numpy).reshape((2,) + (1,) * (len(shape) - 1))
            feeds[spec.name] = np.broadcast_to(rows, shape).copy()
    swapped = {name: np.ascontiguousarray(value[::-1]) for name, value in feeds.items()}
    try:
        plain = session.run(pairs, feeds, _QUIET)
        other = session.run(pairs, swapped, _QUIET)
    except Exception:  # a refusal of made-up values says nothing about the model
        return None
    for answer, answer_swapped in zip(plain, other, strict=True):
        first, second = np.asarray(answer, np.float64), np.asarray(answer_swapped, np.float64)
        if first.shape != (2,) or second.shape != (2,):
            return None
        if not np.allclose(second, first[::-1], rtol=1e-4, atol=1e-6):
            return False
    return True
