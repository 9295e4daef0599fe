"""Inputs a graph uses as row indices of a weight table (an `nn.Embedding` exports as a Gather
of its weight by the ids): their values must be rows of that table.

ONNX's Gather reads a negative index from the end of the table, where torch raises an
IndexError: pandas' `category.cat.codes` gives -1 for a missing category, and such a model
silently answered with the last category's embedding. Publish-time only (needs `onnx`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx


# Ops whose output holds its first input's values (its ids): int32 ids reach an embedding's
# Gather through a Cast to int64, as torch exports them.
PASS_THROUGH = frozenset({"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})


def index_rows(graph: onnx.GraphProto) -> dict[str, int]:
    """Graph input name -> the row count of the smallest table it indexes (Gather on axis 0 of
    an initializer, the input itself, or it through `PASS_THROUGH` ops, as the indices)."""
    tables = {t.name: int(t.dims[0]) for t in graph.initializer if len(t.dims) >= 1}
    inputs = {i.name for i in graph.input} - set(tables)
    source = {name: name for name in inputs}  # a value -> the graph input whose ids it holds
    found: dict[str, int] = {}
    for node in graph.node:  # ONNX graphs are stored in topological order
        if node.domain not in ("", "ai.onnx") or not node.input:
            continue
        if node.op_type in PASS_THROUGH and node.input[0] in source:
            source.update((out, source[node.input[0]]) for out in node.output)
            continue
        if node.op_type != "Gather" or len(node.input) < 2:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        table, indices = node.input[0], source.get(node.input[1])
        if axis == 0 and table in tables and indices is not None:
            found[indices] = min(found.get(indices, tables[table]), tables[table])
    return found
