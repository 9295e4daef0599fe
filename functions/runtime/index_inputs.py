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


def index_rows(graph: onnx.GraphProto) -> dict[str, int]:
    """Graph input name -> the row count of the smallest table it indexes (Gather on axis 0 of
    an initializer, the input itself as the indices)."""
    tables = {t.name: int(t.dims[0]) for t in graph.initializer if len(t.dims) >= 1}
    inputs = {i.name for i in graph.input} - set(tables)
    found: dict[str, int] = {}
    for node in graph.node:
        if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        table, indices = node.input[0], node.input[1]
        if axis == 0 and table in tables and indices in inputs:
            found[indices] = min(found.get(indices, tables[table]), tables[table])
    return found
