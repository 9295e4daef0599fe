"""Models whose batch axis is fixed at one: run several rows one session call each.

`torch.onnx.export` without `dynamic_axes` (or the dynamo exporter without `dynamic_shapes`)
writes the example's batch size into the graph, so the usual export of an image model takes
[1, 3, H, W] and answers [1, classes]. Such a model still answers any number of rows, one call
a row, which is what a caller sending several images, a batch file of them or an explanation's
masked rows needs. A batch fixed at more than one is left alone: rows would have to be padded
to fill it, and nothing says the graph treats the rows apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from functions.runtime.manifest import ModelManifest

Runner = Callable[[Sequence[str], Mapping[str, np.ndarray], Any], list[Any]]


def one_row_batch(manifest: ModelManifest) -> bool:
    """Whether every input and output has a first (batch) dimension of exactly 1, and some
    input a dimension after it: a lone [1] input is one value, not a row, but beside [1, F]
    features a [1] input is one value a row (an embedding's id, as the legacy exporter
    writes `forward(features, category)` without dynamic axes)."""
    return (
        any(len(spec.shape) >= 2 for spec in manifest.inputs)
        and all(len(spec.shape) >= 1 and spec.shape[0] == 1 for spec in manifest.inputs)
        and all(len(spec.shape) >= 1 and spec.shape[0] == 1 for spec in manifest.outputs)
    )


def row_by_row(run: Runner) -> Runner:
    """`run` (session.run's signature) for feeds of any number of rows: one call a row, the
    outputs stacked along the batch axis."""

    def run_rows(names: Sequence[str], feeds: Mapping[str, np.ndarray], options: Any) -> list[Any]:
        rows = len(next(iter(feeds.values())))
        if rows == 1:
            return run(names, feeds, options)
        parts = [
            run(names, {name: value[i : i + 1] for name, value in feeds.items()}, options)
            for i in range(rows)
        ]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(names))]

    return run_rows
