"""Models whose batch axis is fixed at one: run several rows one session call each.

`torch.onnx.export` without `dynamic_axes` (or the dynamo exporter without `dynamic_shapes`)
writes the example's batch size into the graph, so the usual export of an image model takes
[1, 3, H, W] and answers [1, classes]. Such a model still answers any number of rows, one call
a row, which is what a caller sending several images, a batch file of them or an explanation's
masked rows needs. A batch fixed at more than one is left alone: rows would have to be padded
to fill it, and nothing says the graph treats the rows apart.

An input fixed at 1 on its first axis beside inputs with a dynamic one is another matter: an
RNN's initial state h0 [layers, batch, hidden] (PyTorch's layout) has its rows on a later,
dynamic axis, and the export fixed nothing (`rows_elsewhere`). Batch files and `instances`
records give every input's rows on axis 0, so such a model takes whole tensors only; saying its
batch was fixed at 1, with a re-export on axis 0 as the fix, sent its users the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from functions.runtime.manifest import ModelManifest, TensorSpec

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


def rows_elsewhere(manifest: ModelManifest, spec: TensorSpec) -> int | None:
    """The axis input `spec`'s rows look to be on, where that is not its first: the first is
    fixed at 1 and a later one dynamic, while another input's first is dynamic (its rows)."""
    if len(spec.shape) < 2 or spec.shape[0] != 1:
        return None
    if not any(other.shape[:1] == (-1,) for other in manifest.inputs if other is not spec):
        return None
    return next((axis for axis, size in enumerate(spec.shape) if axis and size == -1), None)


def rows_elsewhere_advice(manifest: ModelManifest, spec: TensorSpec, axis: int) -> str:
    """What a caller can do with a model whose input `spec` has its rows on `axis`, not 0."""
    names = ", ".join(f'"{other.name}": ...' for other in manifest.inputs)
    return (
        f"input '{spec.name}' has shape {list(spec.shape)}: its rows look to be on axis {axis} "
        f"(dynamic; axis 0 is fixed at 1), as an RNN's initial state [layers, batch, hidden] "
        "has them, while batch files and `instances` records give every input's rows on axis 0: "
        f"send whole tensors to the predict API ({{\"inputs\": {{{names}}}}}, '{spec.name}' "
        f"with its rows on axis {axis}), or export the model with '{spec.name}' batch-first"
    )
