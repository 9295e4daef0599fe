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

skl2onnx (and onnxmltools, built on it) declares every output's batch -1 whatever its inputs
say, so its export with `FloatTensorType([1, F])` (a tutorial pattern) answers one row a row
although no output shows a 1: the predict route refused a second row and batch scoring the
whole model, though each row runs as it would alone (scikit-learn's predict is row-wise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from functions.runtime.manifest import ModelManifest, TensorSpec

Runner = Callable[[Sequence[str], Mapping[str, np.ndarray], Any], list[Any]]

# Converters whose outputs answer one row per input row, declared -1 whatever the input says.
ROW_WISE_PRODUCERS = ("skl2onnx", "onnxmltools")
# skl2onnx's initial type for each of aiaas's element types (skl2onnx.common.data_types).
SKL2ONNX_TYPES = {
    "float32": "FloatTensorType",
    "float64": "DoubleTensorType",
    "int64": "Int64TensorType",
    "int32": "Int32TensorType",
    "string": "StringTensorType",
    "bool": "BooleanTensorType",
}


def one_row_batch(manifest: ModelManifest) -> bool:
    """Whether every input and output has a first (batch) dimension of exactly 1, and some
    input a dimension after it: a lone [1] input is one value, not a row, but beside [1, F]
    features a [1] input is one value a row (an embedding's id, as the legacy exporter
    writes `forward(features, category)` without dynamic axes)."""
    row_wise = (1, -1) if _producer(manifest) in ROW_WISE_PRODUCERS else (1,)
    return (
        any(len(spec.shape) >= 2 for spec in manifest.inputs)
        and all(len(spec.shape) >= 1 and spec.shape[0] == 1 for spec in manifest.inputs)
        and all(len(spec.shape) >= 1 and spec.shape[0] in row_wise for spec in manifest.outputs)
    )


def as_served(manifest: ModelManifest) -> ModelManifest:
    """`manifest` with its batch axes dynamic where it runs several rows one call each
    (`one_row_batch`), as it serves them: what another version must match to take its
    requests or one file's rows. A re-export with a dynamic batch axis (publish's own advice)
    was refused by `aiaas compare` and `aiaas rollout` against the export fixed at 1, the
    rollout saying its callers "would get a 422" (hunt_journey2 2)."""
    if not one_row_batch(manifest):
        return manifest

    def batched(specs: tuple[TensorSpec, ...]) -> tuple[TensorSpec, ...]:
        return tuple(replace(spec, shape=(-1, *spec.shape[1:])) for spec in specs)

    return replace(manifest, inputs=batched(manifest.inputs), outputs=batched(manifest.outputs))


def _producer(manifest: ModelManifest) -> str:
    """The exporter's name as the file gives it, without its version ("skl2onnx 1.20.0")."""
    return (manifest.file.producer.split() or [""])[0].lower()


def dynamic_batch_advice(manifest: ModelManifest, name: str = "") -> str:
    """How to export `manifest`'s model again with a dynamic batch axis, in its exporter's own
    terms: torch advice told a scikit-learn user nothing they could do. `name`: the input the
    torch advice shows (the refused one), else the first."""
    torch = (
        "torch.onnx.export(..., dynamic_shapes=...), or dynamo=False with "
        f"dynamic_axes={{'{name or manifest.inputs[0].name}': {{0: 'batch'}}}} for every input "
        "and output"
    )
    types = [
        f"('{spec.name}', {SKL2ONNX_TYPES.get(spec.dtype, 'FloatTensorType')}"
        f"([None, {', '.join(str(size) for size in spec.shape[1:])}]))"
        for spec in manifest.inputs[:3]
    ]
    more = ", ..." if len(manifest.inputs) > 3 else ""
    sklearn = (
        f"skl2onnx's initial_types=[{', '.join(types)}{more}], or to_onnx(model, X[:1]), "
        "which leaves the batch dynamic"
    )
    producer = _producer(manifest)
    if producer in ROW_WISE_PRODUCERS:
        return sklearn
    return torch if producer == "pytorch" else f"{torch}; {sklearn}"


def fixed_batch_note(manifest: ModelManifest) -> str | None:
    """What `aiaas publish` says of a model whose graph fixes its batch (no dynamic batch axis),
    which it otherwise learned only when a request or a batch file was refused."""
    if any(not spec.shape or spec.shape[0] == -1 for spec in manifest.inputs):
        return None  # some input's rows are dynamic: the export fixed no batch
    fixed = next((spec for spec in manifest.inputs if len(spec.shape) >= 2), None)
    if fixed is None:
        return None  # [3] alone is one row of three values, not a batch
    said = f"input '{fixed.name}' {list(fixed.shape)} fixes its batch at {fixed.shape[0]}"
    if one_row_batch(manifest):
        return (
            f"{said}: predict and batch run several rows one session call each (slower than "
            f"one call); to run them together, export with a dynamic batch axis: "
            f"{dynamic_batch_advice(manifest)}"
        )
    return (
        f"warning: {said}: each predict request must hold {fixed.shape[0]} row(s), and batch "
        f"scoring refuses the model; export with a dynamic batch axis: "
        f"{dynamic_batch_advice(manifest)}"
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


def elsewhere_advice(manifest: ModelManifest, spec: TensorSpec) -> str:
    """`rows_elsewhere_advice` for input `spec` where its rows look to be on a later axis."""
    axis = rows_elsewhere(manifest, spec)
    return "" if axis is None else rows_elsewhere_advice(manifest, spec, axis)


def output_rows_elsewhere(manifest: ModelManifest, spec: TensorSpec) -> int | None:
    """The axis output `spec`'s rows are on, where that is not its first: the first is a fixed
    size and a later one dynamic, while the inputs' rows are dynamic. skl2onnx exports a
    multi-label classifier's probabilities so, [labels, N, 2]: one [N, 2] table a label."""
    if len(spec.shape) < 2 or spec.shape[0] == -1:
        return None
    if not manifest.inputs or any(other.shape[:1] != (-1,) for other in manifest.inputs):
        return None
    return next((axis for axis, size in enumerate(spec.shape) if axis and size == -1), None)


def output_rows_elsewhere_advice(spec: TensorSpec, axis: int) -> str:
    """What a caller can do with a model whose output `spec` answers its rows on `axis`."""
    shape = ", ".join("N" if size == -1 else str(size) for size in spec.shape)
    return (
        f"output '{spec.name}' is [{shape}]: its rows are on axis {axis}, not the first "
        f"(skl2onnx exports a multi-label classifier's probabilities so, one [N, 2] table a "
        f"label), while batch scoring writes an output's first axis as the file's rows (a file "
        f"of {spec.shape[0]} rows had each label's table written as one of its rows): send the "
        "rows to the predict API, which answers such an output whole, or export one model a label"
    )
