"""The specs publish reads of a graph's inputs and outputs from onnxruntime's view of it, and
which outputs no input reaches.

An output no input reaches (an `nn.Parameter` returned as an output, a constant prior) answers
the same tensor whatever is sent: a declared `[1, C]` of it is what it answers for any batch, so
it is not relabelled `[-1, C]` as a torch legacy export's batched outputs are (their declaration
keeps the example's batch of 1); OIP metadata said `[-1, C]` and the server answered `[1, C]`.
An output some input reaches but reduced over the batch axis is found by running the graph
(functions/runtime/batch_reduced.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import onnxruntime as ort

from functions.runtime.dtypes import BY_ORT, ZIPMAP_TYPES
from functions.runtime.errors import BadRequest
from functions.runtime.graph_classes import GraphClasses
from functions.runtime.manifest import TensorSpec

if TYPE_CHECKING:
    import onnx


def input_free_outputs(graph: onnx.GraphProto) -> frozenset[str]:
    """The graph's outputs that no graph input reaches through its nodes (initializers and
    Constant nodes only). A node holding a subgraph (If, Loop, Scan) counts as reached: its
    body may read any name of the graph around it."""
    weights = {tensor.name for tensor in graph.initializer}
    reached = {value.name for value in graph.input if value.name not in weights}
    for node in graph.node:  # ONNX keeps nodes in topological order
        if any(name in reached for name in node.input) or any(
            attr.HasField("g") or attr.graphs for attr in node.attribute
        ):
            reached.update(node.output)
    return frozenset(value.name for value in graph.output if value.name not in reached)


def _shape(arg: ort.NodeArg) -> tuple[int, ...]:
    # Symbolic or unknown dims (None, "N", "batch") are dynamic.
    return tuple(dim if isinstance(dim, int) and dim > 0 else -1 for dim in arg.shape)


def _unserved(ort_type: str, also: str = "") -> str:
    """Why a tensor of `ort_type` cannot be served: not a tensor, or an element type onnxruntime's
    Python API and the Open Inference Protocol cannot carry (BF16, FLOAT8, INT4: a BF16 input
    was told 'inputs must be tensors')."""
    served = ", ".join(d.oip for d in BY_ORT.values())
    if ort_type.startswith("tensor("):
        return (
            f"has type {ort_type}, which aiaas cannot serve: its element types are {served}; "
            "export the model with one of them (a Cast at its edges)"
        )
    return f"has type {ort_type}, which aiaas cannot serve: it serves tensors of {served}{also}"


def _sequence_fix(arg: ort.NodeArg) -> str:
    """What to do with a sequence of tensors: skl2onnx exports a MultiOutputClassifier's
    probabilities so, one tensor a target, and a refusal that stopped at the type left its
    user nowhere to go."""
    if not arg.type.startswith("seq(tensor("):
        return ""
    return (
        "; skl2onnx exports a MultiOutputClassifier's probabilities so, one tensor a target: "
        "export each target's estimator (model.estimators_[i]) as its own model and publish "
        f"each, or keep only the tensor outputs (onnx.utils.extract_model(..., "
        f"output_names=[...]) without '{arg.name}')"
    )


def input_specs(args: list[ort.NodeArg], *, finite: bool) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        entry = BY_ORT.get(arg.type)
        if entry is None:
            raise BadRequest(f"input '{arg.name}' {_unserved(arg.type)}")
        dtype = entry.name
        specs.append(
            TensorSpec(arg.name, dtype, _shape(arg), finite=finite and dtype.startswith("float"))
        )
    return tuple(specs)


def output_spec(arg: ort.NodeArg, classes: GraphClasses | None, *, batched: bool) -> TensorSpec:
    """`batched`: every input has a dynamic first (batch) dimension and some input reaches
    this output (`input_free_outputs`)."""
    entry = BY_ORT.get(arg.type)
    if entry is not None:
        shape = _shape(arg)
        if classes is not None and arg.name in classes.label_outputs and shape == (1,):
            # onnxmltools' LightGBM export declares its label output [1]; it holds one class a
            # row, and a fixed [1] in OIP metadata tells clients the model takes one row.
            shape = (-1,)
        elif batched and len(shape) >= 2 and shape[0] == 1:
            # torch.onnx.export(dynamo=False) with dynamic_axes naming the inputs only keeps
            # the example's batch of 1 in each output's declared shape; it answers N rows.
            shape = (-1, *shape[1:])
        return TensorSpec(arg.name, entry.name, shape)
    if arg.type not in ZIPMAP_TYPES:
        also = " or a ZipMap's class -> probability maps (seq(map(...)))"
        raise BadRequest(f"output '{arg.name}' {_unserved(arg.type, also)}{_sequence_fix(arg)}")
    if classes is None:
        raise BadRequest(
            f"output '{arg.name}' is a ZipMap ({arg.type}); reading its classes from the graph "
            "needs the onnx package: pip install onnx (or export without ZipMap: skl2onnx "
            "options={id(model): {'zipmap': False}})"
        )
    keys = classes.zipmap_keys.get(arg.name)
    if not keys:
        raise BadRequest(
            f"output '{arg.name}' has type {arg.type} but no ZipMap with class labels makes it"
        )
    return TensorSpec(arg.name, "float32", (-1, len(keys)), map_keys=keys)
