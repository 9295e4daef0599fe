"""Small ONNX graphs whose outputs are not one row per input row (a hunt's models): a detector's
boxes [K, 4] and [N, K, 6] (K found in the whole call), a sum over the request [1, F], and a
scalar []. Online they answer as onnxruntime does; per-row features (batch, explain, drift)
must say they cannot read them per row, not fail deep in numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests import onnx_factory

FEATURES = 4


def _save(nodes: list, ins: list, outs: list, consts: dict[str, np.ndarray], path: Path) -> Path:
    graph = helper.make_graph(
        nodes, path.stem, ins, outs, [numpy_helper.from_array(v, n) for n, v in consts.items()]
    )
    return onnx_factory.save(graph, path)


def _x(*dims: str | int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))


def boxes(path: Path) -> Path:
    """boxes [K, 4]: the rows whose x_0 > 0 (K of the N sent, any number)."""
    nodes = [
        helper.make_node("Slice", ["x", "s0", "s1", "ax"], ["c0"]),
        helper.make_node("Squeeze", ["c0", "ax"], ["c0s"]),
        helper.make_node("Greater", ["c0s", "thr"], ["mask"]),
        helper.make_node("NonZero", ["mask"], ["nz"]),
        helper.make_node("Squeeze", ["nz", "z0"], ["idx"]),
        helper.make_node("Gather", ["x", "idx"], ["boxes"], axis=0),
    ]
    consts = {
        "s0": np.array([0], np.int64),
        "s1": np.array([1], np.int64),
        "ax": np.array([1], np.int64),
        "z0": np.array([0], np.int64),
        "thr": np.array([0.0], np.float32),
    }
    out = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["K", FEATURES])
    return _save(nodes, [_x("N", FEATURES)], [out], consts, path)


def detections(path: Path) -> Path:
    """dets [N, K, 6] of x [N, 8, 6]: each image's first K rows, K the count of positive
    x[:, :, 0] over the whole call (so it changes with the rows sent)."""
    nodes = [
        helper.make_node("Gather", ["x", "zero"], ["x0"], axis=2),
        helper.make_node("Greater", ["x0", "thr"], ["m"]),
        helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
        helper.make_node("ReduceSum", ["mi", "axes01"], ["kk"], keepdims=0),
        helper.make_node("Reshape", ["kk", "one"], ["k"]),
        helper.make_node("Slice", ["x", "s0", "k", "ax1"], ["dets"]),
    ]
    consts = {
        "zero": np.array(0, np.int64),
        "thr": np.array([0.0], np.float32),
        "axes01": np.array([0, 1], np.int64),
        "one": np.array([1], np.int64),
        "s0": np.array([0], np.int64),
        "ax1": np.array([1], np.int64),
    }
    out = helper.make_tensor_value_info("dets", TensorProto.FLOAT, ["N", "K", 6])
    return _save(nodes, [_x("N", 8, 6)], [out], consts, path)


def summed(path: Path) -> Path:
    """s [1, F]: the column sums of the whole request."""
    nodes = [helper.make_node("ReduceSum", ["x", "a0"], ["s"], keepdims=1)]
    out = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, FEATURES])
    return _save(nodes, [_x("N", FEATURES)], [out], {"a0": np.array([0], np.int64)}, path)


def scalar(path: Path) -> Path:
    """m []: the mean of every value sent."""
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0)]
    out = helper.make_tensor_value_info("m", TensorProto.FLOAT, [])
    return _save(nodes, [_x("N", FEATURES)], [out], {}, path)


def images(rows: int, seed: int = 0) -> np.ndarray:
    """[rows, 8, 6] images of which about half the cells have x[..., 0] > 0."""
    return np.random.default_rng(seed).normal(size=(rows, 8, 6)).astype(np.float32)
