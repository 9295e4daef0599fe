"""The weight a load holds twice: the largest mapped weight onnxruntime packs.

At a session's start onnxruntime copies the constant weight of each matrix product (a MatMul's
or Gemm's B, a Conv's W, an LSTM's W and R) into a buffer laid out for its kernels, then lets
go of the original: "prepacking", which serving keeps (each run is faster for it). A weight it
maps (external data, or a big single file's raw_data: mapped_weights.py) is read in from the
mapping while its packed copy is written, so at that moment both are held, and a load peaks at
its weights once plus the largest packed one: ~1.0x for a transformer of many small matrices,
2.0x for a model whose weights are one matrix (docs/large_models.md, measured).

Which weights are packed is read from the graph's structure, no weight read: an initializer a
node takes as its second input or later (onnxruntime packs no first input; a Gather's table is
its first, read row by row as requests come). Every such input counts, an Add's bias too: the
safe side, and biases are small. Nodes of subgraphs (If and Loop branches) count as well.

A packed copy can be larger than its weight: a float MatMul's or Gemm's B is packed in panels of
16 columns, so a B of 3 columns is held at 16/3 = 5.3x, one of 17 at 32/17 (`padding`: what the
packed copies add past the weights, counted from the initializers' dimensions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from functions.runtime.protowire import LEN, VARINT, Buffer, Field, fields, varint

# Field numbers from onnx.proto (tests check them against onnx's own descriptors).
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5
NODE_INPUT, NODE_OP_TYPE, NODE_ATTRIBUTE = 1, 4, 5
ATTRIBUTE_NAME, ATTRIBUTE_I, ATTRIBUTE_G, ATTRIBUTE_GRAPHS = 1, 3, 6, 11
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_NAME = 1, 2, 8
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 13, 14, 1
ENTRY_KEY, ENTRY_VALUE = 1, 2
# Bytes an element of each TensorProto.DataType takes (4-bit types rounded up; strings: none).
ITEM_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8}
ITEM_BYTES |= {14: 8, 15: 16, 16: 2, 17: 1, 18: 1, 19: 1, 20: 1, 21: 1, 22: 1}
FLOAT = 1
PANEL = 16  # columns of a packed float B (MLAS's SGEMM panels; onnxruntime 1.32, measured)


@dataclass
class Packing:
    """What a walk of a model's graph found: the mapped initializers' sizes by name, and the
    names nodes take as weights (`largest`: what is held twice)."""

    sizes: dict[bytes, int] = field(default_factory=dict)
    weights: set[bytes] = field(default_factory=set)
    dims: dict[bytes, tuple[int, ...]] = field(default_factory=dict)  # float initializers'
    products: set[tuple[bytes, bool]] = field(default_factory=set)  # Bs, and whether transposed

    def padding(self) -> int:
        """Bytes the packed copies of float MatMul and Gemm Bs add past the weights: K rows of N
        columns are packed as K x N rounded up to PANEL (none when N is a multiple of it)."""
        extra = 0
        for name, transposed in self.products:
            dims = self.dims.get(name, ())
            if len(dims) == 2:
                rows, columns = dims[::-1] if transposed else dims
                extra += rows * (-columns % PANEL) * ITEM_BYTES[FLOAT]
        return extra

    def initializer(self, buf: Buffer, tensor: list[Field]) -> None:
        """An initializer (its fields), any kind: a float one's dimensions kept by name."""
        kind = _data_type(tensor)
        name = next((i for i in tensor if i.number == TENSOR_NAME and i.wire == LEN), None)
        if kind == FLOAT and name is not None:
            self.dims[bytes(buf[name.start : name.end])] = tuple(_dims(buf, tensor))

    def largest(self) -> int:
        """The largest mapped initializer some node takes as a weight (0: none)."""
        return max((size for name, size in self.sizes.items() if name in self.weights), default=0)

    def mapped(self, buf: Buffer, tensor: list[Field], size: int) -> None:
        """An initializer (its fields) onnxruntime maps, of `size` bytes."""
        name = next((i for i in tensor if i.number == TENSOR_NAME and i.wire == LEN), None)
        if name is not None:
            self.sizes[bytes(buf[name.start : name.end])] = size

    def external(self, buf: Buffer, tensor: list[Field]) -> None:
        """An initializer, mapped when it keeps its data in an external data file."""
        location = (
            i.start for i in tensor if i.number == TENSOR_DATA_LOCATION and i.wire == VARINT
        )
        if EXTERNAL in location:
            self.mapped(buf, tensor, external_bytes(buf, tensor))

    def node(self, buf: Buffer, node: Field, external: bool) -> None:
        """A node's inputs after its first, and its subgraphs' (their initializers in external
        data too, when `external`)."""
        inputs: list[bytes] = []
        op, transposed = b"", False
        for item in fields(buf, node.start, node.end):
            if item.number == NODE_INPUT and item.wire == LEN:
                if inputs:
                    self.weights.add(bytes(buf[item.start : item.end]))
                inputs.append(bytes(buf[item.start : item.end]))
            elif item.number == NODE_OP_TYPE and item.wire == LEN:
                op = bytes(buf[item.start : item.end])
            elif item.number == NODE_ATTRIBUTE and item.wire == LEN:
                parts = list(fields(buf, item.start, item.end))
                transposed |= _attribute(buf, parts, b"transB") == 1
                for part in parts:
                    if part.number in (ATTRIBUTE_G, ATTRIBUTE_GRAPHS) and part.wire == LEN:
                        self._subgraph(buf, part, external)
        if op in (b"MatMul", b"Gemm") and len(inputs) > 1:
            self.products.add((inputs[1], transposed and op == b"Gemm"))

    def _subgraph(self, buf: Buffer, graph: Field, external: bool) -> None:
        for item in fields(buf, graph.start, graph.end):
            if item.number == GRAPH_NODE and item.wire == LEN:
                self.node(buf, item, external)
            elif item.number == GRAPH_INITIALIZER and item.wire == LEN:
                tensor = list(fields(buf, item.start, item.end))
                self.initializer(buf, tensor)
                if external:
                    self.external(buf, tensor)


def external_bytes(buf: Buffer, tensor: list[Field]) -> int:
    """An external tensor's bytes: its `length` entry, else its dimensions' product."""
    for item in tensor:
        if item.number == TENSOR_EXTERNAL_DATA and item.wire == LEN:
            entry = {e.number: buf[e.start : e.end] for e in fields(buf, item.start, item.end)}
            length = bytes(entry.get(ENTRY_VALUE, b""))
            if bytes(entry.get(ENTRY_KEY, b"")) == b"length" and length.isdigit():
                return int(length)
    kind = _data_type(tensor)
    return prod(_dims(buf, tensor)) * ITEM_BYTES.get(kind, 0)


def _data_type(tensor: list[Field]) -> int:
    return next((i.start for i in tensor if i.number == TENSOR_DATA_TYPE and i.wire == VARINT), 0)


def _dims(buf: Buffer, tensor: list[Field]) -> list[int]:
    dims: list[int] = []
    for item in tensor:
        if item.number == TENSOR_DIMS and item.wire == VARINT:
            dims.append(item.start)
        elif item.number == TENSOR_DIMS and item.wire == LEN:  # packed
            dims += _varints(buf, item.start, item.end)
    return dims


def _attribute(buf: Buffer, attribute: list[Field], name: bytes) -> int | None:
    """An int attribute's value (its fields), when it is the one called `name`."""
    named = any(
        i.number == ATTRIBUTE_NAME and i.wire == LEN and bytes(buf[i.start : i.end]) == name
        for i in attribute
    )
    value = next((i.start for i in attribute if i.number == ATTRIBUTE_I and i.wire == VARINT), None)
    return value if named else None


def _varints(buf: Buffer, start: int, end: int) -> list[int]:
    values, position = [], start
    while position < end:
        value, position = varint(buf, position)
        values.append(value)
    return values
