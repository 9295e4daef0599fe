"""Float inputs a model's own graph imputes: every value it reads of them reaches an ai.onnx.ml
`Imputer` that replaces NaN (skl2onnx's export of scikit-learn's `SimpleImputer`), so a missing
value (`null`, an empty CSV cell) is one the model fills in, as its `predict` does.

Such a pipeline was published as taking finite numbers only unless `--allow-nonfinite` was
given: a `null` was a 422, batch refused every row with a gap, `aiaas baseline` failed on the
training file itself, and `publish --data` on held-out rows with gaps, each saying to publish
again with a flag named for NaN and infinity (hunt_journey2 1). `aiaas publish` reads the
graph instead, as it reads a OneHotEncoder's category for a missing text (`category_graph`).

Only steps that carry values to the Imputer unchanged are followed (a Concat of columns, a
column picked, a Cast, a reshape); an input any of whose uses goes elsewhere first (a Scaler
before the Imputer, a column the imputer never sees) is left finite: NaN would reach an
operator that carries it into the answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx

IMPUTER = "Imputer"
ML_DOMAIN = "ai.onnx.ml"
ANY_INPUT = frozenset({"Concat"})  # every input's values carried into its output
FIRST_INPUT = frozenset(  # the values of input 0 carried on; the others are indices or shapes
    {
        "Identity",
        "Cast",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Gather",
        "ArrayFeatureExtractor",
    }
)
MAX_STEPS = 32


Sink = Callable[["onnx.NodeProto", int], "bool | None"]


def imputed_inputs(graph: onnx.GraphProto) -> frozenset[str]:
    """The graph inputs whose every use reaches a NaN-replacing Imputer through steps that
    carry values unchanged."""
    return reaching(graph, _imputer)


def _imputer(node: onnx.NodeProto, position: int) -> bool | None:
    if node.op_type == IMPUTER and node.domain == ML_DOMAIN:
        return position == 0 and _replaces_nan(node)
    return None  # no imputer: followed if it carries values


def reaching(graph: onnx.GraphProto, sink: Sink) -> frozenset[str]:
    """The graph inputs whose every use reaches a node `sink` takes (it answers True for the
    node and the input's position; False: refused; None: no sink, followed if it carries the
    values unchanged)."""
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in dict.fromkeys(node.input):
            if name:
                users.setdefault(name, []).append(node)
    answered = {value.name for value in graph.output}
    return frozenset(
        value.name
        for value in graph.input
        if _reaches(value.name, users, answered, MAX_STEPS, sink)
    )


def _reaches(
    name: str, users: dict[str, list[onnx.NodeProto]], answered: set[str], steps: int, sink: Sink
) -> bool:
    found = users.get(name)
    if not found or name in answered or steps <= 0:
        return False  # unused, answered as it is, or too far to follow
    for node in found:
        position = list(node.input).index(name)
        taken = sink(node, position)
        if taken is not None:
            if not taken:
                return False
            continue
        carried = node.op_type in ANY_INPUT or (node.op_type in FIRST_INPUT and position == 0)
        if not carried or node.domain not in ("", "ai.onnx", ML_DOMAIN):
            return False
        if not _reaches(node.output[0], users, answered, steps - 1, sink):
            return False
    return True


def _replaces_nan(node: onnx.NodeProto) -> bool:
    """The Imputer replaces NaN (its replaced_value_float; ONNX's default is 0.0) with finite
    values (an Imputer filling NaN with NaN imputes nothing)."""
    replaces = filled = False
    for attribute in node.attribute:
        if attribute.name == "replaced_value_float":
            replaces = math.isnan(attribute.f)
        elif attribute.name == "imputed_value_floats":
            filled = bool(attribute.floats) and all(math.isfinite(v) for v in attribute.floats)
    return replaces and filled


def shown(names: tuple[str, ...]) -> str:
    """Input names as publish's notes list them: the first six, quoted."""
    return ", ".join(f"'{name}'" for name in names[:6]) + (", ..." if len(names) > 6 else "")


def takes_missing(names: tuple[str, ...], how: str) -> tuple[str, ...]:
    """What `aiaas publish` says of inputs that take missing values, `how` the graph treats
    them (nothing for no input)."""
    if not names:
        return ()
    many = len(names) > 1
    return (
        f"input{'s' if many else ''} {shown(names)} take{'' if many else 's'} missing values "
        f"(null, an empty CSV cell): {how}",
    )


def imputed_note(names: tuple[str, ...]) -> tuple[str, ...]:
    """What `aiaas publish` says of the inputs `imputed_inputs` found (nothing for none)."""
    return takes_missing(names, "the graph imputes them (an Imputer, scikit-learn's SimpleImputer)")
