"""The demo's CNN and text Transformer as ONNX graphs built with onnx.helper (no torch, no training).

Used until `aiaas train training/specs/<spec>.yaml --publish` can produce the trained demo
models; weights are random but the graphs have the demo's shapes and operators, which is what
serving cost depends on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import GraphProto, NodeProto, TensorProto, helper, numpy_helper

OPSET = 17


def _save(graph: GraphProto, path: Path) -> Path:

    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="bench"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)
    return path


class _Weights:
    """Initializers with fan-in scaled random values, named in order."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: list[TensorProto] = []

    def add(self, name: str, shape: tuple[int, ...], fan_in: int | None = None) -> str:

        scale = 1.0 / np.sqrt(fan_in) if fan_in else 0.0
        value = (self.rng.normal(size=shape) * scale).astype(np.float32)
        self.tensors.append(numpy_helper.from_array(value, name))
        return name

    def const(self, name: str, value: np.ndarray) -> str:

        self.tensors.append(numpy_helper.from_array(value, name))
        return name


def cnn_onnx(path: Path, seed: int = 0) -> Path:
    """Digits CNN: x[N,1,8,8] -> Conv16 -> Relu -> Conv32 -> Relu -> MaxPool2 -> 64 -> 10 logits."""

    w = _Weights(seed)
    node = helper.make_node
    nodes = [
        node(
            "Conv", ["x", w.add("C1", (16, 1, 3, 3), 9), w.add("c1", (16,))], ["a1"], pads=[1] * 4
        ),
        node("Relu", ["a1"], ["r1"]),
        node(
            "Conv",
            ["r1", w.add("C2", (32, 16, 3, 3), 144), w.add("c2", (32,))],
            ["a2"],
            pads=[1] * 4,
        ),
        node("Relu", ["a2"], ["r2"]),
        node("MaxPool", ["r2"], ["p2"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p2"], ["f"]),
        node("Gemm", ["f", w.add("W1", (512, 64), 512), w.add("b1", (64,))], ["h"]),
        node("Relu", ["h"], ["rh"]),
        node("Gemm", ["rh", w.add("W2", (64, 10), 64), w.add("b2", (10,))], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializer=w.tensors,
    )
    return _save(graph, path)


def transformer_onnx(
    path: Path,
    *,
    vocab: int = 1000,
    seq: int = 32,
    dim: int = 64,
    heads: int = 4,
    layers: int = 2,
    classes: int = 4,
    seed: int = 0,
) -> Path:
    """Text classifier: tokens[N,seq] int64 -> embeddings -> `layers` pre-norm encoder blocks -> mean -> logits."""

    w = _Weights(seed)
    nodes = [
        helper.make_node("Gather", [w.add("E", (vocab, dim), 1), "tokens"], ["emb"]),
        helper.make_node("Add", ["emb", w.add("P", (seq, dim), 1)], ["h0"]),
    ]
    w.const("split_heads", np.array([0, 0, heads, dim // heads], np.int64))
    w.const("merge_heads", np.array([0, 0, dim], np.int64))
    w.const("scale", np.array(1.0 / np.sqrt(dim // heads), np.float32))
    h = "h0"
    for i in range(layers):
        nodes += _encoder_block(w, h, f"l{i}", dim)
        h = f"l{i}_out"
    nodes += [
        helper.make_node("ReduceMean", [h], ["pooled"], axes=[1], keepdims=0),
        helper.make_node(
            "Gemm",
            ["pooled", w.add("Wc", (dim, classes), dim), w.add("bc", (classes,))],
            ["logits"],
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "text_transformer",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", seq])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=w.tensors,
    )
    return _save(graph, path)


def _encoder_block(w: _Weights, h: str, p: str, dim: int) -> list[NodeProto]:
    """Pre-norm multi-head self-attention + ReLU feed-forward, both residual."""

    node = helper.make_node
    ones, zeros = np.ones(dim, np.float32), np.zeros(dim, np.float32)
    ln1 = (w.const(f"{p}_g1", ones), w.const(f"{p}_b1", zeros))
    ln2 = (w.const(f"{p}_g2", ones), w.const(f"{p}_b2", zeros))
    out = [node("LayerNormalization", [h, *ln1], [f"{p}_n1"], axis=-1)]
    for t in ("q", "k", "v"):
        out += [
            node("MatMul", [f"{p}_n1", w.add(f"{p}_W{t}", (dim, dim), dim)], [f"{p}_{t}"]),
            node("Reshape", [f"{p}_{t}", "split_heads"], [f"{p}_{t}4"]),
            node("Transpose", [f"{p}_{t}4"], [f"{p}_{t}h"], perm=[0, 2, 1, 3]),
        ]
    out += [
        node("Transpose", [f"{p}_kh"], [f"{p}_kt"], perm=[0, 1, 3, 2]),
        node("MatMul", [f"{p}_qh", f"{p}_kt"], [f"{p}_s"]),
        node("Mul", [f"{p}_s", "scale"], [f"{p}_ss"]),
        node("Softmax", [f"{p}_ss"], [f"{p}_a"], axis=-1),
        node("MatMul", [f"{p}_a", f"{p}_vh"], [f"{p}_c"]),
        node("Transpose", [f"{p}_c"], [f"{p}_ct"], perm=[0, 2, 1, 3]),
        node("Reshape", [f"{p}_ct", "merge_heads"], [f"{p}_cm"]),
        node("MatMul", [f"{p}_cm", w.add(f"{p}_Wo", (dim, dim), dim)], [f"{p}_o"]),
        node("Add", [h, f"{p}_o"], [f"{p}_r1"]),
        node("LayerNormalization", [f"{p}_r1", *ln2], [f"{p}_n2"], axis=-1),
        node("MatMul", [f"{p}_n2", w.add(f"{p}_W1", (dim, 2 * dim), dim)], [f"{p}_f1"]),
        node("Relu", [f"{p}_f1"], [f"{p}_f1r"]),
        node("MatMul", [f"{p}_f1r", w.add(f"{p}_W2", (2 * dim, dim), 2 * dim)], [f"{p}_f2"]),
        node("Add", [f"{p}_r1", f"{p}_f2"], [f"{p}_out"]),
    ]
    return out
