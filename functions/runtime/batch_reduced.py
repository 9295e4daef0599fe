"""Which outputs declared with a batch of 1 beside batched inputs answer one row for any batch:
publish runs the graph with two batch sizes to tell.

torch.onnx.export(dynamo=False) with `dynamic_axes` naming the inputs only keeps the example's
batch of 1 in each output's declared shape, and such an output answers N rows: it is published
`[-1, C]` (graph_specs.output_spec). But an output REDUCED over the batch axis (a torch model's
`x.sum(0, keepdim=True)`, or a mean over the batch beside the per-row output) is declared
`[1, C]` by the same export and answers `[1, C]` whatever the batch: relabelled, OIP metadata and
`aiaas models` said `[-1, C]` while the server answered `[1, C]`. No input reaching it
(graph_specs.input_free_outputs) finds a constant, not a reduction, so the graph is run: on 2
rows and on 3 (each dynamic dimension past the batch 1 long, else probe_outputs.LENGTH long), and
an output that answers one row both times keeps its declared `[1, C]`. Where the graph refuses
made-up rows, or is too big to run at publish (probe_outputs.MAX_WEIGHTS), the relabelling
stands, as before.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import onnxruntime as ort

from functions.runtime.manifest import TensorSpec
from functions.runtime.probe_outputs import LENGTH, MAX_WEIGHTS, probe_run

if TYPE_CHECKING:
    import onnx

SIZES = (2, 3)


def relabelled(session: ort.InferenceSession, outputs: tuple[TensorSpec, ...]) -> list[str]:
    """The outputs declared with a batch of 1 (rank 2 or more) that `outputs` reads as batched."""
    declared = {arg.name: list(arg.shape or [None]) for arg in session.get_outputs()}
    return [
        spec.name
        for spec in outputs
        if spec.rank >= 2 and spec.shape[0] == -1 and (declared.get(spec.name) or [None])[0] == 1
    ]


def _answered_rows(
    session: ort.InferenceSession,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
    rows: int,
) -> dict[str, int] | None:
    answered = probe_run(session, inputs, outputs, rows=rows)
    if answered is None and any(-1 in spec.shape[1:] for spec in inputs):
        answered = probe_run(session, inputs, outputs, rows=rows, length=LENGTH)
    if answered is None:
        return None
    return {name: (a.shape[0] if a.ndim else 0) for name, a in answered.items()}


def batch_of_one(
    session: ort.InferenceSession,
    proto: onnx.ModelProto | None,
    inputs: tuple[TensorSpec, ...],
    outputs: tuple[TensorSpec, ...],
) -> tuple[TensorSpec, ...]:
    """`outputs` with each relabelled one (`relabelled`) that answers one row to 2 rows and to 3
    put back to its declared batch of 1."""
    names = relabelled(session, outputs)
    if not names or proto is None:
        return outputs
    if sum(math.prod(tensor.dims) for tensor in proto.graph.initializer) >= MAX_WEIGHTS:
        return outputs
    asked = tuple(spec for spec in outputs if spec.name in names)
    counts = [_answered_rows(session, inputs, asked, rows) for rows in SIZES]
    one_row = {
        name
        for name in names
        if all(count is not None and count.get(name) == 1 for count in counts)
    }
    return tuple(
        replace(spec, shape=(1, *spec.shape[1:])) if spec.name in one_row else spec
        for spec in outputs
    )
