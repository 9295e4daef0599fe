"""Why `aiaas publish --quantize` refuses a model, said from its graph: a file that is already
int8 or fp16, and a variant no smaller because float32 weights stay float32 in it, or because
its weights are float64, which neither method converts.

Both read the graph only (`load_external_data=False`: a tensor's size is its shape times 4
bytes), never the weights. Before this, an already quantized file got whatever the quantizer
did with it (a variant no smaller, onnxruntime refusing `DynamicQuantizeLinear` on float16,
"two nodes with same node name"), and a model whose weights a GRU holds, or whose weights are
kept in float32 beside their int8 copies because an Identity still reads them (a torch
`nn.TransformerEncoder` of copied layers: 971,874 -> 1,108,772 bytes), was told of tree
ensembles and kB-sized models.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The nodes a quantizer writes (onnxruntime's dynamic, static QDQ and QOperator formats, and
# its com.microsoft kernels); any of them means the file was quantized already.
QUANTIZED_OPS = frozenset(
    {
        "MatMulInteger",
        "ConvInteger",
        "DynamicQuantizeLinear",
        "QuantizeLinear",
        "DequantizeLinear",
        "DynamicQuantizeMatMul",
        "MatMulIntegerToFloat",
        "MatMulNBits",
        "QAttention",
        "QGemm",
        "QOrderedMatMul",
    }
)
# A variant whose float32 weights left are at least this share of its source is refused with
# them named; below it, the source had too few weights to pay for what the method adds.
NAMED_SHARE = 0.25
HALF_WEIGHTS = "its weights are float16"


def _graphs(graph: Any) -> Iterator[Any]:
    """`graph` and the subgraphs of its If, Loop and Scan nodes."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g.node or attribute.g.initializer:
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _graph(path: Path) -> Any:
    import onnx

    return onnx.load(str(path), load_external_data=False).graph


def already_quantized(path: Path) -> tuple[str, str] | None:
    """('int8', its quantizer's op types) or ('fp16', 'float16 weights') when the file at
    `path` is already a quantizer's output; else None."""
    from onnx import TensorProto

    halves = (TensorProto.FLOAT16, TensorProto.BFLOAT16)
    ops: set[str] = set()
    half = whole = 0  # float16 and float32 weight elements (a small float16 constant beside
    for graph in _graphs(_graph(path)):  # float32 weights is no fp16 model: hunt_recent2 #10)
        ops |= {n.op_type for n in graph.node if n.op_type in QUANTIZED_OPS}
        ops |= {n.op_type for n in graph.node if n.op_type.startswith("QLinear")}
        for tensor in graph.initializer:
            if tensor.data_type in halves:
                half += math.prod(tensor.dims)
            elif tensor.data_type == TensorProto.FLOAT:
                whole += math.prod(tensor.dims)
    if ops:
        return "int8", f"its graph has {', '.join(sorted(ops))} nodes"
    return ("fp16", HALF_WEIGHTS) if half and half >= whole else None


def float_weights_left(variant: Path) -> tuple[int, dict[str, int], int]:
    """The bytes of float32 weights `variant` still holds, those bytes by the op types of the
    nodes reading them ("GRU", "Add and Identity"), and the bytes of them kept beside an int8
    copy of the same weight (the quantizer's `<name>_quantized`): another node reads them."""
    from onnx import TensorProto

    total, copied = 0, 0
    held: Counter[str] = Counter()
    for graph in _graphs(_graph(variant)):
        readers: dict[str, set[str]] = {}
        for node in graph.node:
            for name in node.input:
                readers.setdefault(name, set()).add(node.op_type)
        names = {tensor.name for tensor in graph.initializer}
        for tensor in graph.initializer:
            if tensor.data_type != TensorProto.FLOAT or tensor.name not in readers:
                continue
            size = 4
            for dim in tensor.dims:
                size *= dim
            total += size
            held[" and ".join(sorted(readers[tensor.name]))] += size
            if f"{tensor.name}_quantized" in names:
                copied += size
    return total, dict(held), copied


def double_weight_bytes(variant: Path) -> int:
    """The bytes of float64 weights `variant` holds: both methods convert float32 weights only,
    so a model exported with float64 rows (skl2onnx's of an array left float64) keeps them all."""
    from onnx import TensorProto

    return sum(
        8 * math.prod(tensor.dims)
        for graph in _graphs(_graph(variant))
        for tensor in graph.initializer
        if tensor.data_type == TensorProto.DOUBLE
    )


def not_smaller(method: str, sizes: tuple[int, int], variant: Path, max_share: float) -> str:
    """The refusal of a variant no smaller than its source, or smaller by less than
    1 - `max_share` (`sizes`: both files' bytes; 7438 -> 6769 was said "not smaller"): the
    float32 weights left in it and the ops holding them, or (too few to name) why the source
    had nothing to store smaller."""
    source_bytes, after = sizes
    head = f"--quantize {method} does not make this model smaller ({source_bytes} -> {after} bytes)"
    if after < source_bytes:  # smaller, but by less than a variant must save (MAX_SHARE)
        # To a tenth, rounded down: 9.6% rounded was "only 10% smaller (...; a variant must
        # save at least 10%)".
        saved = (source_bytes - after) * 1000 // source_bytes / 10  # whole numbers: exact
        said = f"only {saved:g}%" if saved else "less than 0.1%"
        head = (
            f"--quantize {method} makes this model {said} smaller ({source_bytes} -> "
            f"{after} bytes; a variant must save at least {round(100 * (1 - max_share))}%)"
        )
    doubles = double_weight_bytes(variant)
    if doubles >= NAMED_SHARE * source_bytes:  # a 22 kB float64 MLP was told of "a few kB"
        return (
            f"{head}: {doubles:,} bytes of its weights are float64 (double), which neither "
            "method stores smaller (both convert float32 weights): export it in float32 "
            "(skl2onnx: to_onnx(model, X[:1].astype(np.float32)); torch: model.float()) and "
            "quantize that, or publish it without --quantize"
        )
    total, held, copied = float_weights_left(variant)
    if total < NAMED_SHARE * source_bytes:
        return (
            f"{head}: it has too few float32 weight tensors that the method stores in fewer "
            "bytes to pay for what it adds (a model of a few kB; tree ensembles and other "
            "ai.onnx.ml operators, which keep their numbers in node attributes); publish it "
            "without --quantize"
        )
    # The few holding most of them: a LayerNormalization's 512 bytes beside a GRU's 298 kB is noise.
    ranked = sorted(held.items(), key=lambda item: -item[1])
    named = ", ".join(f"{ops} ({size:,} bytes)" for ops, size in ranked[:3] if size >= total / 50)
    kept = (
        f"; {copied:,} of them are kept beside their int8 copies, as other nodes read the "
        "float32 originals"
        if copied
        else ""
    )
    return (
        f"{head}: {total:,} bytes of float32 weights stay float32 in the variant, read by "
        f"{named}, which the method does not store smaller{kept}; publish it without --quantize"
    )
