"""Small ONNX models built with onnx.helper: models this project did not train."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from functions.runtime.cache import sha256_file
from functions.runtime.manifest import ModelFile, ModelManifest, Postprocessing, TensorSpec

OPSET = 17


def save(graph: onnx.GraphProto, path: Path, opset: int = OPSET, ml: int | None = None) -> Path:
    """`graph` as a checked model file at `path` (IR 8, what onnxruntime and our exports read);
    `ml`: the ai.onnx.ml opset too (a tree, a ZipMap, a LinearClassifier)."""
    opsets = [helper.make_opsetid("", opset)]
    if ml is not None:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ml))
    model = helper.make_model(graph, opset_imports=opsets, producer_name="onnx.helper")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


def external_add(path: Path, location: str, width: int) -> Path:
    """y = x + w, w's `width` float32 values read from external data file `location`, which is
    written into the graph as given (no checker: tests name locations it would refuse)."""
    return _external_op(path, location, "Add", [width], width)


def external_matmul(path: Path, location: str, side: int) -> Path:
    """y = x @ w, w a `side` x `side` float32 matrix read from external data file `location`
    (a weight onnxruntime repacks for its matrix products when it runs the model)."""
    return _external_op(path, location, "MatMul", [side, side], side)


def _external_op(path: Path, location: str, op: str, dims: list[int], width: int) -> Path:
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=dims)
    w.data_location = TensorProto.EXTERNAL
    length = str(4 * int(np.prod(dims)))
    for key, value in (("location", location), ("offset", "0"), ("length", length)):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"])],
        f"external_{op.lower()}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, width])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def linear_classifier(
    path: Path, features: int = 4, classes: int = 3, seed: int = 0, bias: float = 0.0
) -> Path:
    """logits = x @ W + b; float32 [N, features] -> [N, classes]."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(rng.normal(size=(features, classes)).astype(np.float32), "W")
    b = numpy_helper.from_array(np.full(classes, bias, dtype=np.float32), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["logits"]),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=[w, b],
    )
    return save(graph, path)


def identity(
    path: Path, elem: int = TensorProto.FLOAT, shape: list[str | int | None] | None = None
) -> Path:
    """y = x for any element type: exercises every datatype end to end."""
    dims = shape or ["N", 3]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", elem, dims)],
        [helper.make_tensor_value_info("y", elem, dims)],
    )
    return save(graph, path)


def two_outputs(path: Path, features: int = 3) -> Path:
    """a = x + 1 and b = x * 2, float32 [N, features]: which outputs come back, in what order."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["x", "one"], ["a"]),
            helper.make_node("Mul", ["x", "two"], ["b"]),
        ],
        "two_outputs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", features]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", features]),
        ],
        initializer=[
            helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
        ],
    )
    return save(graph, path)


def manifest_for(
    path: Path, name: str, version: str, *, labels: tuple[str, ...] = (), finite: bool = True
) -> ModelManifest:
    """A manifest describing `path`, as `aiaas publish` would write it."""
    from functions.runtime.introspect import read_signature

    sig = read_signature(path, finite_inputs=finite)
    post = Postprocessing(scores_output=sig.outputs[0].name) if labels else None
    return ModelManifest(
        name=name,
        version=version,
        task="classification" if labels else "other",
        inputs=sig.inputs,
        outputs=sig.outputs,
        file=ModelFile(
            sha256=sha256_file(path), size=path.stat().st_size, opset=OPSET, producer="onnx.helper"
        ),
        labels=labels,
        postprocessing=post,
    )


__all__ = ["TensorSpec", "identity", "linear_classifier", "manifest_for", "save", "two_outputs"]


def allocating(path: Path, side: int, features: int = 64) -> Path:
    """y = x[:, :1] + sum of a [side, side] float32 tensor of zeros: a graph whose every run
    asks onnxruntime for side^2 * 4 bytes, whatever the input."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "ConstantOfShape",
                ["shape"],
                ["big"],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0]),
            ),
            helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
            helper.make_node("ReduceSum", ["x", "axis"], ["row"], keepdims=1),
            helper.make_node("Add", ["row", "total"], ["y"]),
        ],
        "allocating",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])],
        initializer=[
            numpy_helper.from_array(np.array([side, side], np.int64), "shape"),
            numpy_helper.from_array(np.array([1], np.int64), "axis"),
        ],
    )
    return save(graph, path)


def sized_by_input(path: Path) -> Path:
    """y = ones([1, int(x)]) for x float32 [N, 1]: a graph whose answer's size is a request's
    value (ConstantOfShape fed from the input, as Expand, Tile or Range can be)."""
    one = numpy_helper.from_array(np.array([1], np.int64), "one")
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["xi", "one"], ["n"]),
            helper.make_node("Concat", ["one", "n"], ["shape"], axis=0),
            helper.make_node(
                "ConstantOfShape",
                ["shape"],
                ["y"],
                value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]),
            ),
        ],
        "sized_by_input",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "M"])],
        initializer=[one],
    )
    return save(graph, path)


def even_rows(path: Path) -> Path:
    """y = x for x float32 [N, 4], through a Reshape to [-1, 8] and back: it fails for an odd
    N, as a model whose trace baked a batch size into a shape constant does."""
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["x", "pairs"], ["paired"]),
            helper.make_node("Reshape", ["paired", "rows"], ["y"]),
        ],
        "even_rows",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=[
            numpy_helper.from_array(np.array([-1, 8], np.int64), "pairs"),
            numpy_helper.from_array(np.array([-1, 4], np.int64), "rows"),
        ],
    )
    return save(graph, path)


def careless(path: Path, kind: str) -> Path:
    """A file onnxruntime loads but aiaas cannot serve, or one it does not load: `kind` is
    no_inputs (a constant graph), no_outputs, custom_op (domain com.example) or new_opset
    (opset 99). Written without the checker, as a careless exporter would."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1])
    node, inputs, outputs, opsets = helper.make_node("Relu", ["x"], ["y"]), [x], [y], [("", 17)]
    if kind == "no_inputs":
        value = numpy_helper.from_array(np.ones((1, 1), np.float32))
        node, inputs = helper.make_node("Constant", [], ["y"], value=value), []
    elif kind == "no_outputs":
        outputs = []
    elif kind == "custom_op":
        node = helper.make_node("Scramble", ["x"], ["y"], domain="com.example")
        opsets.append(("com.example", 1))
    elif kind == "new_opset":
        opsets = [("", 99)]
    graph = helper.make_graph([node], kind, inputs, outputs)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(domain, v) for domain, v in opsets]
    )
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def looping(path: Path) -> Path:
    """y = int(x) for x float32 [1, 1], counted by a Loop of int(x) trips: a graph that runs as
    long as a request's value says (1e7 trips: ~10 s of a core)."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["count_in", "one"], ["count_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("count_in", TensorProto.FLOAT, [1, 1]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("count_out", TensorProto.FLOAT, [1, 1]),
        ],
        [numpy_helper.from_array(np.ones((1, 1), np.float32), "one")],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["xi", "scalar"], ["trips"]),
            helper.make_node("Loop", ["trips", "", "zero"], ["y"], body=body),
        ],
        "looping",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        initializer=[
            numpy_helper.from_array(np.zeros(0, np.int64), "scalar"),
            numpy_helper.from_array(np.zeros((1, 1), np.float32), "zero"),
        ],
    )
    return save(graph, path)


def squaring(path: Path, products: int = 1) -> Path:
    """y = sum of (x^T x)^(products + 1) for x float32 [1, M]: `products` M x M matrix products,
    M^3 multiply-adds each, set by how many values a request sends (one at M = 4,500, a ~20 KiB
    body: ~2 s of a core), through shapes alone (no Loop, no size read from a value); a run is
    stopped between two products."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["column"]),
        helper.make_node("MatMul", ["column", "x"], ["p0"]),
    ]
    nodes += [helper.make_node("MatMul", [f"p{i}", "p0"], [f"p{i + 1}"]) for i in range(products)]
    nodes.append(helper.make_node("ReduceSum", [f"p{products}"], ["y"], keepdims=1))
    graph = helper.make_graph(
        nodes,
        "squaring",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, "M"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
    )
    return save(graph, path)


def conv_stack(path: Path, channels: int = 192, layers: int = 3, side: int = 32) -> Path:
    """Conv 3x3 + Relu `layers` times over a float32 [N, 3, side, side] image, then a global
    average pool and MatMul to 10 logits: CPU-heavy per row (~10 ms a row on 2 cores at the
    defaults) with a small input and ~1 MB of weights per layer."""
    rng = np.random.default_rng(0)
    nodes, weights, previous, width = [], [], "x", 3
    for index in range(layers):
        w = rng.normal(scale=0.05, size=(channels, width, 3, 3)).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"w{index}"))
        nodes.append(helper.make_node("Conv", [previous, f"w{index}"], [f"c{index}"], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"c{index}"], [f"r{index}"]))
        previous, width = f"r{index}", channels
    weights.append(numpy_helper.from_array(rng.normal(size=(channels, 10)).astype(np.float32), "W"))
    nodes += [
        helper.make_node("GlobalAveragePool", [previous], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_stack",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, side, side])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        weights,
    )
    return save(graph, path)


def big_add(path: Path, floats: int) -> Path:
    """y = x + w with `floats` float32 weights inside the file: a big single-file model."""
    w = numpy_helper.from_array(np.zeros(floats, np.float32), "w")
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, floats]) for n in "xy"]
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])], "big", io[:1], io[1:], [w]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def matmul_chain(path: Path, shapes: list[tuple[int, int]], *, external: bool) -> Path:
    """h = x @ W0 @ W1 ... over float32 weights of `shapes` (random; the first's rows are the
    input's width): weights in a few big matrices, each one onnxruntime packs; all in
    `model.onnx.data` beside `path` when `external`."""
    rng = np.random.default_rng(0)
    nodes, weights = [], []
    for i, shape in enumerate(shapes):
        w = (rng.standard_normal(shape, np.float32) / np.sqrt(shape[0])).astype(np.float32)
        weights.append(numpy_helper.from_array(w, f"W{i}"))
        nodes.append(helper.make_node("MatMul", [f"h{i}", f"W{i}"], [f"h{i + 1}"]))
    graph = helper.make_graph(
        nodes,
        "matmul_chain",
        [helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["N", shapes[0][0]])],
        [helper.make_tensor_value_info(f"h{len(shapes)}", TensorProto.FLOAT, ["N", shapes[-1][1]])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location="model.onnx.data")
    else:
        onnx.save(model, str(path))
    return path


Tensors = dict[str, tuple[int, list[int | str]]]  # name -> (TensorProto type, shape)


def over_rows(
    path: Path,
    nodes: list[onnx.NodeProto],
    inputs: Tensors,
    outputs: Tensors,
    initializers: list[onnx.TensorProto] | None = None,
) -> Path:
    """A graph of `nodes` over named inputs and outputs, saved at `path` (its name the file's)."""
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info(n, kind, shape) for n, (kind, shape) in inputs.items()],
        [helper.make_tensor_value_info(n, kind, shape) for n, (kind, shape) in outputs.items()],
        initializers or [],
    )
    return save(graph, path)
