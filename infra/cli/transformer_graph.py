"""What a transformer's ONNX graph says about its text: vocabulary rows and positions.

Read at publish time with the `onnx` package (the graph only: external weights are not loaded).
The word embedding is the 2-D initializer that a Gather indexes with the token ids input (through
casts and reshapes); any other 2-D initializer a Gather indexes (positions, token types) is a
position table candidate, the largest of them the number of positions the model can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from functions.runtime.errors import BadRequest

if TYPE_CHECKING:
    import onnx

# Nodes that carry the ids through unchanged for our purpose (type or shape only).
PASS_THROUGH = frozenset({"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})


@dataclass(frozen=True)
class Embeddings:
    """Rows of the word embedding and of the largest other embedding table (None: not found)."""

    vocabulary_rows: int | None
    position_rows: int | None


def load_graph(path: Path) -> onnx.GraphProto:
    """The graph of `path` without its weights' data; a BadRequest naming the extra if onnx is
    missing (publishing with a tokenizer needs it, serving does not)."""
    try:
        import onnx
    except ModuleNotFoundError:
        raise BadRequest(
            "reading the model's embedding table needs the onnx package: pip install 'aiaas[text]'"
        ) from None
    return onnx.load(str(path), load_external_data=False).graph


def _from_ids(graph: onnx.GraphProto, ids_input: str) -> set[str]:
    """Names of the values that are the ids input passed through casts and reshapes."""
    derived = {ids_input}
    for node in graph.node:  # ONNX graphs are stored in topological order
        if node.op_type in PASS_THROUGH and node.input and node.input[0] in derived:
            derived.update(node.output)
    return derived


def read_embeddings(graph: onnx.GraphProto, ids_input: str, type_input: str | None) -> Embeddings:
    """The word embedding's and the position table's rows, as far as the graph shows them."""
    tables = {t.name: int(t.dims[0]) for t in graph.initializer if len(t.dims) == 2}
    words = _from_ids(graph, ids_input)
    types = _from_ids(graph, type_input) if type_input else set()
    vocabulary, others = None, []
    for node in graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[0] not in tables:
            continue
        rows = tables[node.input[0]]
        if node.input[1] in words:
            vocabulary = vocabulary or rows
        elif node.input[1] not in types:
            others.append(rows)
    return Embeddings(vocabulary, max(others, default=None))
