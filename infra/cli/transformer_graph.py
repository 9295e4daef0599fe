"""What a transformer's ONNX graph says about its text: vocabulary rows and positions.

Read at publish time by walking the model's protobuf fields over a memory map
(`protowire`): the nodes' operators, inputs and outputs and each initializer's name
and dims, never a weight's bytes, whether the weights are inside the file or in external data
(`onnx.load` of a single-file model parses and copies every weight: ~2.4 s and 1 GB of memory
for a 1 GB model). The word embedding is the 2-D initializer that a Gather indexes with the
token ids input (through casts and reshapes); any other 2-D initializer a Gather indexes
(positions, token types) is a position table candidate, the largest of them the number of
positions the model can read.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path

from functions.runtime.artifact_files import MODEL_GRAPH
from functions.runtime.errors import BadRequest
from functions.runtime.protowire import LEN, fields, varint

# Nodes that carry the ids through unchanged for our purpose (type or shape only).
PASS_THROUGH = frozenset({"Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
# Field numbers from onnx.proto: GraphProto, NodeProto, TensorProto.
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
NODE_INPUT, NODE_OUTPUT, NODE_OP_TYPE = 1, 2, 4
TENSOR_DIMS, TENSOR_NAME = 1, 8


@dataclass(frozen=True)
class Node:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class GraphOutline:
    """The top-level graph's nodes, in their stored (topological) order, and the rows of each
    2-D initializer by name."""

    nodes: tuple[Node, ...]
    tables: dict[str, int]


@dataclass(frozen=True)
class Embeddings:
    """Rows of the word embedding, of the largest other embedding table, and of the token type
    table the type ids input indexes (None: not found)."""

    vocabulary_rows: int | None
    position_rows: int | None
    type_rows: int | None = None


def load_graph(path: Path) -> GraphOutline:
    """The outline of `path`'s graph, no weight read; a BadRequest if it is not ONNX."""
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return _outline(m)
    except (IndexError, ValueError, UnicodeDecodeError) as exc:  # an empty file: ValueError
        raise BadRequest(f"{path} is not an ONNX model ({exc})") from None


def _outline(buf: mmap.mmap) -> GraphOutline:
    nodes: list[Node] = []
    tables: dict[str, int] = {}
    for number, wire, start, end, _ in fields(buf, 0, len(buf)):
        if (number, wire) != (MODEL_GRAPH, LEN):
            continue
        for field, kind, a, b, _ in fields(buf, start, end):
            if (field, kind) == (GRAPH_NODE, LEN):
                nodes.append(_node(buf, a, b))
            elif (field, kind) == (GRAPH_INITIALIZER, LEN):
                name, dims = _tensor(buf, a, b)
                if len(dims) == 2:
                    tables[name] = dims[0]
    return GraphOutline(tuple(nodes), tables)


def _node(buf: mmap.mmap, start: int, end: int) -> Node:
    found: dict[int, list[str]] = {NODE_INPUT: [], NODE_OUTPUT: [], NODE_OP_TYPE: []}
    for number, wire, a, b, _ in fields(buf, start, end):
        if wire == LEN and number in found:
            found[number].append(bytes(buf[a:b]).decode())
    return Node("".join(found[NODE_OP_TYPE]), tuple(found[NODE_INPUT]), tuple(found[NODE_OUTPUT]))


def _tensor(buf: mmap.mmap, start: int, end: int) -> tuple[str, list[int]]:
    name, dims = "", []
    for number, wire, a, b, _ in fields(buf, start, end):
        if number == TENSOR_NAME and wire == LEN:
            name = bytes(buf[a:b]).decode()
        elif number == TENSOR_DIMS and wire == 0:
            dims.append(a)
        elif number == TENSOR_DIMS and wire == LEN:  # packed
            while a < b:
                value, a = varint(buf, a)
                dims.append(value)
    return name, dims


def _from_ids(graph: GraphOutline, ids_input: str) -> set[str]:
    """Names of the values that are the ids input passed through casts and reshapes."""
    derived = {ids_input}
    for node in graph.nodes:  # ONNX graphs are stored in topological order
        if node.op_type in PASS_THROUGH and node.inputs and node.inputs[0] in derived:
            derived.update(node.outputs)
    return derived


def read_embeddings(graph: GraphOutline, ids_input: str, type_input: str | None) -> Embeddings:
    """The word embedding's, the position table's and the type table's rows, as far as the
    graph shows them."""
    words = _from_ids(graph, ids_input)
    types = _from_ids(graph, type_input) if type_input else set()
    vocabulary, others, type_rows = None, [], None
    for node in graph.nodes:
        if node.op_type != "Gather" or len(node.inputs) < 2 or node.inputs[0] not in graph.tables:
            continue
        rows = graph.tables[node.inputs[0]]
        if node.inputs[1] in words:
            vocabulary = vocabulary or rows
        elif node.inputs[1] in types:
            type_rows = type_rows or rows
        else:
            others.append(rows)
    return Embeddings(vocabulary, max(others, default=None), type_rows)
