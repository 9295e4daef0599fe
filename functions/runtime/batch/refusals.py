"""Rows the model refuses: a chunk whose run fails on its values is split to find them.

A node can fail on particular values only (a category a OneHotEncoder never saw, an index past
a Gather's table): onnxruntime then fails the whole run, every row of the chunk with it. The
chunk is split in halves, and each half that fails again in halves, down to single rows: the
rows that fail alone are bad rows with the model's reason (`ort_errors.ModelRefused`), and
the others are scored. That costs about 2 * bad * log2(rows) extra runs, and nothing when no
run fails. A model that fails on every row is broken rather than its input bad: the run fails
when the model refuses every row of the input's first chunk (a CSV's second, where the first
holds its header alone); shards and worker blocks cut no earlier than its end, so where the
input is cut does not change the outcome (`job.span_edges`, docs/batch.md).
`aiaas compare` finds the rows each version refuses the same way (`ChunkScorer.answered`).
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from functions.runtime.batch.sizes import in_order
from functions.runtime.errors import BadRequest
from functions.runtime.ort_errors import ModelRefused

if TYPE_CHECKING:
    from functions.runtime.batch.scoring import Chunk, ChunkScorer


class RefusesEveryRow(BadRequest):
    """The model failed on every row it was given: the run fails (retrying cannot help)."""


def isolate(scorer: ChunkScorer, chunk: Chunk, reason: str) -> dict[str, np.ndarray]:
    """The outputs of the rows of `chunk` the model scores, once the rows it refuses are moved
    to the chunk's errors; called when a run of the whole chunk was refused for `reason`."""
    outputs, refused = bisect(scorer, chunk.features, chunk.rows, reason)
    rows = sorted(refused)
    chunk.drop(rows, [f"the model refused this row: {refused[row]}" for row in rows])
    return outputs


def bisect(
    scorer: ChunkScorer, features: dict[str, np.ndarray], rows: int, reason: str
) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """(the outputs of the rows the model scores, in row order; row -> reason for each row it
    refuses) for `rows` rows whose run together was refused for `reason`. Batch scoring and
    `aiaas compare` both find refused rows here. Raises `RefusesEveryRow` when the model
    refused every row and these rows are the ones it is judged on (not `scorer.proven`)."""
    refused: dict[int, str] = {}
    scored: list[dict[str, np.ndarray]] = []  # in row order: halves are tried low one first

    def split(start: int, end: int, reason: str) -> None:
        """Rows [start, end) failed together, for `reason`."""
        if end - start == 1:
            refused[start] = reason
            return
        middle = (start + end) // 2
        for low, high in ((start, middle), (middle, end)):
            part = {name: value[low:high] for name, value in features.items()}
            try:
                scored.append(scorer.run_rows(part, high - low))
            except ModelRefused as exc:
                split(low, high, exc.reason)

    split(0, rows, reason)
    if not scored and not scorer.proven:
        raise RefusesEveryRow(
            f"model {scorer.model.ref} refused every one of the {rows} rows it was given "
            f"before scoring any (the first: {refused[0]}); a model that fails on every row is "
            "broken, or these rows all hold values it was not built for: nothing was scored"
        )
    return joined(scored, rows - len(refused)), refused


def joined(parts: list[dict[str, np.ndarray]], rows: int) -> dict[str, np.ndarray]:
    """Outputs of consecutive runs as one output each (one array a row where the runs' row
    shapes differ: a segmentation map of images of several sizes)."""
    if not parts:
        return {}
    starts = np.cumsum([0, *(len(next(iter(part.values()))) for part in parts)])
    placed = [np.arange(start, end) for start, end in pairwise(starts.tolist())]
    return {
        name: in_order([(at, part[name]) for at, part in zip(placed, parts, strict=True)], rows)
        for name in parts[0]
    }
