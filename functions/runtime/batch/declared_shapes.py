"""An output answering rows of another shape than its manifest declares: batch scoring writes
each row in the declared shape (a CSV header's width, an .npz array's), so it stops, saying
what works.

torch.onnx.export(dynamo=True) of a GRU over steps of any length declares its per-step output
[batch, 5, 6] (the example's 5 steps) and answers [batch, steps, 6]. Publish runs such a graph on
made-up rows and marks a dimension the answer contradicts dynamic (probe_outputs.py), but not
one that refuses the rows or is too big to run, nor a model published before it did.
"""

from __future__ import annotations

import numpy as np

from functions.runtime.batch.sizes import is_ragged
from functions.runtime.manifest import TensorSpec
from functions.runtime.probe_outputs import MAX_WEIGHTS


def row_shape_of(value: np.ndarray, declared: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of a row of an output: of the first that differs from `declared` where the
    rows differ (ragged: rows of sequences of several lengths, scored one length a run)."""
    if not is_ragged(value):
        return tuple(value.shape[1:])
    return next((row.shape for row in value if row.shape != declared), declared)


def declared_otherwise(spec: TensorSpec, got: tuple[int, ...]) -> str:
    """Why output `spec`, answering rows of shape `got`, cannot be written, and what works."""
    declared = spec.shape[1:]
    if len(got) == len(declared):
        pairs = enumerate(zip(declared, got, strict=True), start=1)
        dims = [f"dim[{axis}]" for axis, (d, g) in pairs if d != g]
        mark = (
            f"mark '{spec.name}' {' and '.join(dims)} dynamic in the graph (onnx: set the "
            "output's type.tensor_type.shape.dim[i].dim_param to a name, e.g. 'steps') and "
            "publish it again"
        )
    else:
        mark = "export the model with the shape it answers and publish it again"
    return (
        f"output '{spec.name}' answers {list(got)} a row where its manifest says "
        f"{list(declared)} (its exporter declared a fixed shape the model does not answer), and "
        "batch scoring writes each row in the declared shape: publish the model again (publish "
        "runs a sequence or image model on made-up rows and marks a dimension the answer "
        f"contradicts dynamic); if `aiaas show` still says {list(spec.shape)} (a model that "
        f"refuses made-up rows, or of {MAX_WEIGHTS:,} weights or more, is not run), {mark}"
    )
