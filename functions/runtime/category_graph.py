"""A model's category encoders read from its graph: each OneHotEncoder's categories and the
graph input (and column of it) whose values reach it, for saying which value a refused
request held that the model does not know (`unseen_values.py`).

ai.onnx.ml's OneHotEncoder with zeros=0 (what skl2onnx exports for scikit-learn's default
handle_unknown='error') fails the run on a value outside its categories; LabelEncoder and
CategoryMapper (OrdinalEncoder's export, onnxmltools') map such a value to their default and
never fail. skl2onnx feeds an encoder one column: `Gather(input, [i], axis=1)` (an input per
column has i = 0), int64 columns through a Cast. Only those steps, and Concat of whole graph
inputs before the Gather, are followed; any other op between makes the source unknown (None),
so a column is never named on a guess.

The graph is walked with `protowire` (no `onnx` package when serving, weights never read),
once per model and only after a refusal; the result is small and the walk keeps no bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.runtime.protowire import LEN, VARINT, Buffer, fields, varint

# Field numbers from onnx.proto (tests check them against onnx's own descriptors).
MODEL_GRAPH, MODEL_OPSET_IMPORT = 7, 8
OPSET_DOMAIN = 1
ML_DOMAIN = "ai.onnx.ml"  # where OneHotEncoder is defined
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT = 1, 5, 11
NODE_INPUT, NODE_OUTPUT, NODE_NAME, NODE_OP_TYPE, NODE_ATTRIBUTE = 1, 2, 3, 4, 5
ATTRIBUTE_NAME, ATTRIBUTE_I, ATTRIBUTE_T, ATTRIBUTE_INTS, ATTRIBUTE_STRINGS = 1, 3, 5, 8, 9
VALUE_INFO_NAME = 1
TENSOR_DATA_TYPE, TENSOR_INT32_DATA, TENSOR_INT64_DATA = 2, 5, 7
TENSOR_NAME, TENSOR_RAW_DATA = 8, 9
INT32, INT64 = 6, 7  # TensorProto element types of an index

ENCODER = "OneHotEncoder"
SAME_VALUES = frozenset({"Identity", "Cast"})  # element by element: a column stays a column
SAME_COLUMN = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})  # of one column only
PICK_COLUMN = frozenset({"Gather", "ArrayFeatureExtractor"})
MAX_STEPS = 32
# The category skl2onnx gives a scikit-learn OneHotEncoder's missing value NaN (as pandas
# reads a gap) seen in its fit: a null sent for its input means that category. Not "None":
# skl2onnx writes the text "None" (a real value, a frame read with keep_default_na=False) and
# a Python None alike (scikit-learn keeps a None of an object column, numpy's or pandas', as a
# category of its own, and encodes None so at predict, NaN as unknown), and taking the text
# for a gap scored a null and an empty cell as that text, with success. A null for an input
# whose encoder learnt "None" is refused, saying to send "None" (`none_category_inputs`).
MISSING_CATEGORY = "nan"
NONE_CATEGORY = "None"


@dataclass(frozen=True)
class Source:
    """Where an encoder's values come from: column `column` of the graph inputs `inputs`
    concatenated along axis 1 (one input mostly); every value of them when `column` is None."""

    inputs: tuple[str, ...]
    column: int | None


@dataclass(frozen=True)
class Encoder:
    """A OneHotEncoder node: its categories (str or int) and its values' source, if known."""

    node: str
    categories: tuple[str, ...] | tuple[int, ...]
    source: Source | None


@dataclass
class _Node:
    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, tuple[int, int]]  # name -> the attribute's span in the buffer


def imports_ml_ops(buf: Buffer) -> bool:
    """Whether the model imports the ai.onnx.ml operator set, the only one with a
    OneHotEncoder: read from its opset imports, stepping over the graph (and its weights)."""
    for field in fields(buf, 0, len(buf)):
        if field.number == MODEL_OPSET_IMPORT and field.wire == LEN:
            domain = next(
                (f for f in fields(buf, field.start, field.end) if f.number == OPSET_DOMAIN), None
            )
            if domain is not None and _text(buf, domain) == ML_DOMAIN:
                return True
    return False


def encoders(buf: Buffer) -> dict[str, Encoder]:
    """The OneHotEncoder nodes of the model in `buf` by node name (none: an empty dict).
    ValueError or IndexError when `buf` is not an ONNX model."""
    graph = next(
        (f for f in fields(buf, 0, len(buf)) if f.number == MODEL_GRAPH and f.wire == LEN), None
    )
    if graph is None:
        return {}
    nodes: list[_Node] = []
    inputs: set[str] = set()
    tensors: dict[str, tuple[int, int]] = {}
    for number, wire, start, end, _ in fields(buf, graph.start, graph.end):
        if wire != LEN:
            continue
        if number == GRAPH_NODE:
            nodes.append(_node(buf, start, end))
        elif number == GRAPH_INPUT:
            inputs.update(
                _text(buf, f) for f in fields(buf, start, end) if f.number == VALUE_INFO_NAME
            )
        elif number == GRAPH_INITIALIZER:
            name = next((f for f in fields(buf, start, end) if f.number == TENSOR_NAME), None)
            if name is not None:
                tensors[_text(buf, name)] = (start, end)
    inputs -= tensors.keys()  # old exporters list initializers among the inputs
    graph_reader = _Graph(buf, nodes, inputs, tensors)
    return {
        node.name: Encoder(node.name, categories, graph_reader.source(node.inputs[0]))
        for node in nodes
        if node.op == ENCODER
        and node.inputs
        and (categories := graph_reader.categories(node)) is not None
    }


def missing_categories(buf: Buffer) -> dict[str, list[tuple[str, ...]]]:
    """Graph input -> the (string) categories of each OneHotEncoder its values reach (all of
    them, or one column each) that learnt the missing category ("nan"); publish reads them.
    An input that several concatenated feed is left out."""
    found: dict[str, list[tuple[str, ...]]] = {}
    for encoder in encoders(buf).values():
        if (
            MISSING_CATEGORY in encoder.categories
            and encoder.source is not None
            and len(encoder.source.inputs) == 1
        ):
            texts = tuple(c for c in encoder.categories if isinstance(c, str))
            found.setdefault(encoder.source.inputs[0], []).append(texts)
    return found


def none_category_inputs(buf: Buffer) -> set[str]:
    """Graph inputs read by a OneHotEncoder that learnt "None" and no "nan" (a frame fit with
    Python None for its gaps, or holding the text): a null there is refused, and its 422 says
    to send "None", which `predict_proba` gives a None (where "" is a category never seen)."""
    return {
        encoder.source.inputs[0]
        for encoder in encoders(buf).values()
        if NONE_CATEGORY in encoder.categories
        and MISSING_CATEGORY not in encoder.categories
        and encoder.source is not None
        and len(encoder.source.inputs) == 1
    }


def _node(buf: Buffer, start: int, end: int) -> _Node:
    node = _Node("", "", [], [], {})
    for number, wire, a, b, _ in fields(buf, start, end):
        if wire != LEN:
            continue
        if number == NODE_INPUT:
            node.inputs.append(bytes(buf[a:b]).decode("utf-8", "replace"))
        elif number == NODE_OUTPUT:
            node.outputs.append(bytes(buf[a:b]).decode("utf-8", "replace"))
        elif number == NODE_NAME:
            node.name = bytes(buf[a:b]).decode("utf-8", "replace")
        elif number == NODE_OP_TYPE:
            node.op = bytes(buf[a:b]).decode("utf-8", "replace")
        elif number == NODE_ATTRIBUTE:
            name = next((f for f in fields(buf, a, b) if f.number == ATTRIBUTE_NAME), None)
            if name is not None:
                node.attributes[_text(buf, name)] = (a, b)
    return node


def _text(buf: Buffer, field: tuple[int, int, int, int, int]) -> str:
    return bytes(buf[field[2] : field[3]]).decode("utf-8", "replace")


class _Graph:
    def __init__(
        self,
        buf: Buffer,
        nodes: list[_Node],
        inputs: set[str],
        tensors: dict[str, tuple[int, int]],
    ) -> None:
        self.buf, self.inputs, self.tensors = buf, inputs, tensors
        self.producers = {output: node for node in nodes for output in node.outputs}

    def categories(self, node: _Node) -> tuple[str, ...] | tuple[int, ...] | None:
        if "cats_strings" in node.attributes:
            texts = self._attribute(node, "cats_strings", ATTRIBUTE_STRINGS)
            return tuple(bytes(self.buf[a:b]).decode("utf-8", "replace") for a, b in texts)
        if "cats_int64s" in node.attributes:
            return tuple(self._ints(node, "cats_int64s", ATTRIBUTE_INTS))
        return None

    def source(self, tensor: str) -> Source | None:
        """The graph inputs (and column) whose values `tensor` holds, when certain."""
        column: int | None = None
        for _ in range(MAX_STEPS):
            if tensor in self.inputs:
                return Source((tensor,), column)
            node = self.producers.get(tensor)
            if node is None or not node.inputs:
                return None
            if node.op in SAME_VALUES or (node.op in SAME_COLUMN and column is None):
                tensor = node.inputs[0]
            elif node.op in PICK_COLUMN and column in (None, 0) and len(node.inputs) == 2:
                # Column 0 of one column picked before is that column: skl2onnx's
                # ColumnTransformer on integer columns of one input (ArrayFeatureExtractor
                # [k], then Gather [0]) feeds each encoder so.
                axis = self._ints(node, "axis", ATTRIBUTE_I) if node.op == "Gather" else [1]
                column = self._index(node.inputs[1])
                if axis not in ([1], [-1]) or column is None:
                    return None
                tensor = node.inputs[0]
            elif node.op == "Concat" and column is not None:
                parts = [self._whole_input(part) for part in node.inputs]
                if self._ints(node, "axis", ATTRIBUTE_I) not in ([1], [-1]) or None in parts:
                    return None
                return Source(tuple(part for part in parts if part is not None), column)
            else:
                return None
        return None

    def _whole_input(self, tensor: str) -> str | None:
        for _ in range(MAX_STEPS):
            if tensor in self.inputs:
                return tensor
            node = self.producers.get(tensor)
            if node is None or node.op not in SAME_VALUES or not node.inputs:
                return None
            tensor = node.inputs[0]
        return None

    def _index(self, tensor: str) -> int | None:
        """The one integer a constant index tensor holds (an initializer or a Constant)."""
        span = self.tensors.get(tensor)
        node = self.producers.get(tensor)
        if span is None and node is not None and node.op == "Constant":
            value = node.attributes.get("value")
            found = (
                [f for f in fields(self.buf, *value) if f.number == ATTRIBUTE_T] if value else []
            )
            span = (found[0].start, found[0].end) if found else None
        if span is None:
            return None
        values = _tensor_ints(self.buf, *span)
        return values[0] if values is not None and len(values) == 1 else None

    def _attribute(self, node: _Node, name: str, number: int) -> list[tuple[int, int]]:
        span = node.attributes.get(name)
        if span is None:
            return []
        return [(f.start, f.end) for f in fields(self.buf, *span) if f.number == number]

    def _ints(self, node: _Node, name: str, number: int) -> list[int]:
        span = node.attributes.get(name)
        return _varints(self.buf, *span, number) if span is not None else []


def _varints(buf: Buffer, start: int, end: int, number: int) -> list[int]:
    """The int64 values of field `number` in buf[start:end], packed or not."""
    values: list[int] = []
    for field in fields(buf, start, end):
        if field.number != number:
            continue
        if field.wire == VARINT:
            values.append(_signed(field.start))
        elif field.wire == LEN:
            position = field.start
            while position < field.end:
                value, position = varint(buf, position)
                values.append(_signed(value))
    return values


def _tensor_ints(buf: Buffer, start: int, end: int) -> list[int] | None:
    """An int64 or int32 tensor's values (None for another type)."""
    kind = _varints(buf, start, end, TENSOR_DATA_TYPE)
    if kind not in ([INT64], [INT32]):
        return None
    raw = [f for f in fields(buf, start, end) if f.number == TENSOR_RAW_DATA and f.wire == LEN]
    if raw:
        data, size = bytes(buf[raw[0].start : raw[0].end]), 8 if kind == [INT64] else 4
        return [
            int.from_bytes(data[i : i + size], "little", signed=True)
            for i in range(0, len(data) - size + 1, size)
        ]
    return _varints(buf, start, end, TENSOR_INT64_DATA if kind == [INT64] else TENSOR_INT32_DATA)


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value
