"""Whether a model's cost can depend on a request's VALUES, read from its graph once at load.

`aiaas serve` runs a cheap route inline on its event loop, judged on its recent calls
(infra/local/timing.py). A model whose work is set by what a request holds, not by how big it
is, is judged on its cheap calls, and its first heavy one held every client and the health
probes. Such a model is one with a node (in the main graph, a subgraph or a model-local
function) that is
- a loop: Loop, Scan (and onnxruntime's generation loops: BeamSearch, GreedySearch, ...), or
- an operator whose output's element count is set by the VALUES of an input (ONNX's docs: its
  output shape cannot be inferred from its inputs' shapes), where that input is computed from
  the request's values: `SIZED` gives which inputs (by the model's opset: `SIZED_BEFORE`), or
- an If whose condition is computed from the request's values (it picks a cheap branch or a
  costly one).
A value is the request's when a graph input reaches it through any node but Shape and Size
(which read a shape only): a size computed from constants (initializers, Constant nodes) or
from the inputs' shapes (the Shape -> Gather -> Concat -> Expand chains exporters write) does
not count; such a cost grows with the body's size, which the gateway bounds otherwise. A Shape
or Size is the request's where values may have set that shape: of a Reshape (`RESHAPING`) to
a shape read from a value, of an If's output whose branches read the request, and of what is
computed from those. Model-local functions are marked varying to a fixpoint (one may call one
listed after it).
Numel-keeping shape operators (Reshape, Squeeze, Unsqueeze, Split) and reductions (axes) are
not counted: their output holds no more elements than their input.

The graph is walked with `protowire` (no `onnx` package when serving): weights are stepped
over, never read (a model's raw_data, inline or external, is not touched).
"""

from __future__ import annotations

import mmap
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path

from functions.runtime.protowire import LEN, Buffer, Field, fields

# Field numbers from onnx.proto (tests check them against onnx's own descriptors).
MODEL_GRAPH, MODEL_OPSET_IMPORT, MODEL_FUNCTIONS = 7, 8, 25
OPSET_DOMAIN, OPSET_VERSION = 1, 2
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_SPARSE_INITIALIZER = 1, 5, 11, 15
NODE_INPUT, NODE_OUTPUT, NODE_OP_TYPE, NODE_ATTRIBUTE, NODE_DOMAIN = 1, 2, 4, 5, 7
ATTRIBUTE_G, ATTRIBUTE_GRAPHS = 6, 11
TENSOR_NAME, VALUE_INFO_NAME, SPARSE_VALUES = 8, 1, 1
FUNCTION_NAME, FUNCTION_INPUT, FUNCTION_NODE, FUNCTION_OPSET_IMPORT, FUNCTION_DOMAIN = (
    1,
    4,
    7,
    9,
    10,
)

# Loops: their trip count or iterations come from a value (Scan's from an input's length, each
# iteration a subgraph run). The generation loops are onnxruntime's (com.microsoft).
LOOPS = frozenset({"Loop", "Scan", "BeamSearch", "GreedySearch", "Sampling", "WhisperBeamSearch"})
REDUCTIONS = (
    "ReduceSum",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
)
# Operator -> the inputs whose VALUES set its output's element count (ONNX operator docs).
SIZED: Mapping[str, tuple[int, ...]] = {
    "Range": (0, 1, 2),  # start, limit, delta
    "ConstantOfShape": (0,),  # shape
    "Tile": (1,),  # repeats
    "Expand": (1,),  # shape
    "Resize": (2, 3),  # scales, sizes
    "Upsample": (1,),  # scales
    "OneHot": (1,),  # depth
    "Pad": (1, 3),  # pads, axes
    "CenterCropPad": (1,),  # shape
    "MaxUnpool": (2,),  # output_shape
    "Col2Im": (1, 2),  # image_shape, block_shape
    "DFT": (1,),  # dft_length
    "STFT": (1, 3),  # frame_step, frame_length
    "MelWeightMatrix": (0, 1),  # num_mel_bins, dft_length
    "HannWindow": (0,),  # size
    "HammingWindow": (0,),
    "BlackmanWindow": (0,),
    # Their output is at most their input, but their work is set by values: a slice, the top
    # k or the nonzero entries of a big tensor (a weight, an expanded one) is cheap or not.
    "Slice": (1, 2, 3, 4),  # starts, ends, axes, steps
    "TopK": (1,),  # k
    "NonZero": (0,),  # how many entries are nonzero
    "Compress": (1,),  # condition
    "Unique": (0,),
    "NonMaxSuppression": (2,),  # max_output_boxes_per_class
    "StringSplit": (0,),  # how many pieces each string makes
    "SplitToSequence": (1,),  # split: how many pieces, and their sizes
    # axes as an input (ReduceSum from opset 13, the others from 18; an attribute before):
    # which axes a value names sets the output's size (review_rev9 3)
    **dict.fromkeys(REDUCTIONS, (1,)),
    "AffineGrid": (1,),  # size: (N, C, H, W) -> an (N, H, W, 2) grid
    "ImageDecoder": (0,),  # the encoded image's header sets its dimensions
}
# Operators whose inputs were others before an opset: (op, the first opset of `SIZED`'s) ->
# the sized inputs below it (Resize-10 is (X, scales); 11 added roi before scales).
SIZED_BEFORE: Mapping[str, tuple[int, tuple[int, ...]]] = {"Resize": (11, (1,))}
# Numel-keeping operators whose output's SHAPE an input's value sets (Reshape's shape, Squeeze's
# axes...): a Shape or Size of that output is the request's when that input is.
RESHAPING: Mapping[str, tuple[int, ...]] = {
    "Reshape": (1,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "Split": (1,),
}
# The standard operators with graph attributes (Loop and Scan vary whatever their body); any
# operator of another domain than these (a custom or contrib one) may have some too.
SUBGRAPH_OPS = frozenset({"If", "SequenceMap"})
PLAIN_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
SHAPE_ONLY = frozenset({"Shape", "Size"})  # read their input's shape, not its values
MAX_DEPTH = 32  # subgraphs nested deeper: taken to vary (a walk, not a recursion bomb)


def varies_with_input(source: Path | bytes) -> bool:
    """Whether the model at `source` (a file, or its bytes) may cost more on some request values
    than on others; True when its graph cannot be read (onnxruntime loaded it: be careful)."""
    try:
        if isinstance(source, bytes):
            return graph_varies(source)
        with (
            source.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m,
        ):
            return graph_varies(m)
    except (OSError, ValueError, IndexError, RecursionError):
        return True


# Set by `aiaas serve` (infra/local/functions.py) before it loads a predict function: each
# version's graph is read as it loads (on the loading thread, off the event loop), so the
# gateway knows before a call whether the version that answers it may vary. Never set on Lambda.
EAGER = False


class InputCost:
    """`varies_with_input` of a loaded model: read at the load under `aiaas serve` (`EAGER`);
    read when first asked otherwise, so a Lambda function's cold start does not read the graph
    (0.2-0.8 ms for the demo models, 1.3 s for a 200,000-node one). A model held in memory is
    read at once: its bytes are released once its session exists. Two threads asking first
    both read it, to the same answer."""

    def __init__(self, source: Path | bytes) -> None:
        self._path = source if isinstance(source, Path) else None
        lazy = isinstance(source, Path) and not EAGER
        self._varies = None if lazy else varies_with_input(source)

    @property
    def varies(self) -> bool:
        if self._varies is None:
            assert self._path is not None
            self._varies = varies_with_input(self._path)
        return self._varies


def graph_varies(buf: Buffer) -> bool:
    """`varies_with_input` of a model's serialized bytes. ValueError: not protobuf."""
    top = list(fields(buf, 0, len(buf)))
    opset = _default_opset(buf, top, MODEL_OPSET_IMPORT)
    functions = [
        _function(buf, f.start, f.end, opset)
        for f in top
        if f.number == MODEL_FUNCTIONS and f.wire == LEN
    ]
    varying: set[str] = set()  # model-local functions (domain:name) whose body varies
    grown = True
    while grown:  # a function may call one listed after it (ONNX sets no order): to a fixpoint
        grown = False
        for name, body, own_opset in functions:
            if name not in varying and _Walk(buf, varying, own_opset).varies(body):
                varying.add(name)
                grown = True
    for field in top:
        if field.number == MODEL_GRAPH and field.wire == LEN:
            walk = _Walk(buf, varying, opset)
            return walk.varies(_graph_parts(buf, field.start, field.end))
    return False


def _default_opset(buf: Buffer, parts: list[Field], number: int) -> int:
    """The default ("" or ai.onnx) domain's opset among `parts`' opset_import (0: none)."""
    for f in parts:
        if f.number == number and f.wire == LEN:
            entry = list(fields(buf, f.start, f.end))
            domain = [_text(buf, g.start, g.end) for g in entry if g.number == OPSET_DOMAIN]
            if not domain or domain[0] in ("", "ai.onnx"):
                versions = [g.start for g in entry if g.number == OPSET_VERSION]
                return versions[0] if versions else 0
    return 0


_Parts = tuple[list[tuple[int, int]], set[str], list[str]]  # nodes' spans, constants, inputs


def _text(buf: Buffer, start: int, end: int) -> str:
    return bytes(buf[start:end]).decode("utf-8", "replace")


def _graph_parts(buf: Buffer, start: int, end: int) -> _Parts:
    nodes: list[tuple[int, int]] = []
    constants: set[str] = set()
    inputs: list[str] = []
    for f in fields(buf, start, end):
        if f.wire != LEN:
            continue
        if f.number == GRAPH_NODE:
            nodes.append((f.start, f.end))
        elif f.number in (GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER):
            span = (f.start, f.end)
            if f.number == GRAPH_SPARSE_INITIALIZER:  # its name is its values tensor's
                values = [g for g in fields(buf, *span) if g.number == SPARSE_VALUES]
                span = (values[0].start, values[0].end) if values else (0, 0)
            constants.update(
                _text(buf, g.start, g.end) for g in fields(buf, *span) if g.number == TENSOR_NAME
            )
        elif f.number == GRAPH_INPUT:
            inputs.extend(
                _text(buf, g.start, g.end)
                for g in fields(buf, f.start, f.end)
                if g.number == VALUE_INFO_NAME and g.wire == LEN
            )
    return nodes, constants, inputs


def _function(buf: Buffer, start: int, end: int, opset: int) -> tuple[str, _Parts, int]:
    """(its domain:name, its body: its inputs are the request's, its default opset: its own,
    else the model's) of a FunctionProto."""
    name = domain = ""
    inputs: list[str] = []
    nodes: list[tuple[int, int]] = []
    parts = list(fields(buf, start, end))
    opset = _default_opset(buf, parts, FUNCTION_OPSET_IMPORT) or opset
    for f in parts:
        if f.wire != LEN:
            continue
        if f.number == FUNCTION_NAME:
            name = _text(buf, f.start, f.end)
        elif f.number == FUNCTION_DOMAIN:
            domain = _text(buf, f.start, f.end)
        elif f.number == FUNCTION_INPUT:
            inputs.append(_text(buf, f.start, f.end))
        elif f.number == FUNCTION_NODE:
            nodes.append((f.start, f.end))
    return f"{domain}:{name}", (nodes, set(), inputs), opset


class _Walk:
    def __init__(self, buf: Buffer, varying_functions: set[str], opset: int = 0) -> None:
        self.buf = buf
        self.functions = varying_functions
        self.opset = opset  # the default domain's (0: unknown, taken as the newest)
        # Names whose SHAPE (not only values) the request's values may set: a Reshape to a
        # shape read from a value, an If's output (its branches may differ in shape).
        self.shaped: set[str] = set()

    def varies(self, parts: _Parts) -> bool:
        return self._graph(parts, {}, 0)[0]

    def _graph(self, parts: _Parts, outer: Mapping[str, bool], depth: int) -> tuple[bool, set[str]]:
        """(whether a node of the graph varies, the outer names it reads). `outer`: each name
        of the enclosing graphs -> whether it holds the request's values."""
        if depth > MAX_DEPTH:
            return True, set()
        nodes, constants, inputs = parts
        # Request values: the inputs (a subgraph's, a function's: taken to be), not an
        # initializer listed among them by an old exporter.
        local = {name: name not in constants for name in inputs}
        local.update(dict.fromkeys(constants, False))
        free: set[str] = set()

        def request_valued(name: str) -> bool:
            if name in local:
                return local[name]
            free.add(name)
            return outer.get(name, True)  # unknown: taken to be the request's

        shaped = self.shaped
        for start, end in nodes:
            op, domain, node_inputs, outputs, subgraphs = self._node(start, end)
            if op in LOOPS or f"{domain}:{op}" in self.functions:
                return True, free
            # An If on the request's values picks a branch by them: a cheap one or a costly one.
            if op == "If" and node_inputs and node_inputs[0] and request_valued(node_inputs[0]):
                return True, free
            reads = False
            for span in subgraphs:
                scope = ChainMap(local, outer)  # type: ignore[arg-type]
                varies, names = self._graph(_graph_parts(self.buf, *span), scope, depth + 1)
                if varies:
                    return True, free
                reads = any([request_valued(n) for n in names]) or reads
            if any(request_valued(name) for name in self._sized(op, node_inputs) if name):
                return True, free
            if op == "Constant":
                value = False
            elif op in SHAPE_ONLY:  # a shape: the request's where values may have set it
                value = bool(node_inputs) and node_inputs[0] in shaped
            else:
                value = reads or any([request_valued(n) for n in node_inputs if n])
            if op not in SHAPE_ONLY and (
                (reads and subgraphs)
                or any(n in shaped for n in node_inputs)
                or any(
                    request_valued(node_inputs[i])
                    for i in RESHAPING.get(op, ())
                    if i < len(node_inputs) and node_inputs[i]
                )
            ):
                shaped.update(outputs)
            local.update(dict.fromkeys(outputs, value))
        return False, free

    def _sized(self, op: str, inputs: list[str]) -> list[str]:
        """The inputs of an `op` node whose values set its output's size (`SIZED`)."""
        indexes = SIZED.get(op, ())
        before = SIZED_BEFORE.get(op)
        if before is not None and 0 < self.opset < before[0]:
            indexes = before[1]
        return [inputs[i] for i in indexes if i < len(inputs)]

    def _node(
        self, start: int, end: int
    ) -> tuple[str, str, list[str], list[str], list[tuple[int, int]]]:
        buf = self.buf
        op = domain = ""
        inputs: list[str] = []
        outputs: list[str] = []
        attributes: list[tuple[int, int]] = []
        for f in fields(buf, start, end):
            if f.wire != LEN:
                continue
            if f.number == NODE_INPUT:
                inputs.append(_text(buf, f.start, f.end))
            elif f.number == NODE_OUTPUT:
                outputs.append(_text(buf, f.start, f.end))
            elif f.number == NODE_OP_TYPE:
                op = _text(buf, f.start, f.end)
            elif f.number == NODE_DOMAIN:
                domain = _text(buf, f.start, f.end)
            elif f.number == NODE_ATTRIBUTE:
                attributes.append((f.start, f.end))
        subgraphs: list[tuple[int, int]] = []
        # Only these hold graphs: a tree ensemble's attributes (a varint field per value,
        # 100,000s of them) are not walked, which took 20-230 ms a model.
        if op in SUBGRAPH_OPS or domain not in PLAIN_DOMAINS:
            for span in attributes:
                subgraphs.extend(
                    (g.start, g.end)
                    for g in fields(buf, *span)
                    if g.number in (ATTRIBUTE_G, ATTRIBUTE_GRAPHS) and g.wire == LEN
                )
        return op, domain, inputs, outputs, subgraphs
