"""Synthetic transformer-style ONNX models of a chosen size, for bench.large_model and tests.

Token ids in, class logits out: an embedding table, `layers` feed-forward blocks (MatMul up to
4*d, Relu, MatMul down, residual Add) and a classifier head over the mean of the sequence.
The weights are random: what is measured is bytes moved and loaded, not accuracy. Weights are
written straight from numpy, so a 2.5 GB model needs no 2.5 GB protobuf in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import onnx

CLASSES = 4
VOCAB = 8192


@dataclass(frozen=True)
class SyntheticShape:
    width: int  # d, the hidden size
    layers: int

    @property
    def weight_bytes(self) -> int:
        block = 2 * self.width * 4 * self.width + 4 * self.width + self.width
        return 4 * (VOCAB * self.width + self.layers * block + self.width * CLASSES)

    @classmethod
    def of_bytes(cls, target: int, width: int = 1024) -> SyntheticShape:
        """The shape whose weights come closest to `target` bytes (narrower for tiny targets)."""
        while width > 16 and cls(width, 1).weight_bytes > target:
            width //= 2
        per_layer = cls(width, 1).weight_bytes - cls(width, 0).weight_bytes
        layers = max(1, round((target - cls(width, 0).weight_bytes) / per_layer))
        return cls(width, layers)


def write_model(path: Path, shape: SyntheticShape, *, external: bool, seed: int = 0) -> list[Path]:
    """Write the model at `path` (weights in `path.name + '.data'` when `external`); returns
    every file written."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    data_path = path.with_name(path.name + ".data")
    tensors: list[onnx.TensorProto] = []
    with _DataWriter(data_path if external else None) as writer:
        for name, dims in _weights(shape):
            values = (rng.standard_normal(dims, np.float32) / np.sqrt(dims[0])).astype(np.float32)
            tensors.append(writer.tensor(name, values))
    nodes = [helper.make_node("Gather", ["embed", "tokens"], ["h0"])]
    for i in range(shape.layers):
        nodes += [
            helper.make_node("MatMul", [f"h{i}", f"up{i}"], [f"u{i}"]),
            helper.make_node("Add", [f"u{i}", f"up_b{i}"], [f"ub{i}"]),
            helper.make_node("Relu", [f"ub{i}"], [f"r{i}"]),
            helper.make_node("MatMul", [f"r{i}", f"down{i}"], [f"dn{i}"]),
            helper.make_node("Add", [f"dn{i}", f"down_b{i}"], [f"db{i}"]),
            helper.make_node("Add", [f"h{i}", f"db{i}"], [f"h{i + 1}"]),
        ]
    nodes += [
        helper.make_node("ReduceMean", [f"h{shape.layers}"], ["pooled"], axes=[1], keepdims=0),
        helper.make_node("MatMul", ["pooled", "head"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "synthetic-transformer",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["N", "T"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", CLASSES])],
        initializer=tensors,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.producer_name = "bench.synthetic_transformer"
    path.write_bytes(model.SerializeToString())
    return [path, data_path] if external else [path]


def _weights(shape: SyntheticShape) -> list[tuple[str, tuple[int, ...]]]:
    d = shape.width
    found: list[tuple[str, tuple[int, ...]]] = [("embed", (VOCAB, d))]
    for i in range(shape.layers):
        found += [
            (f"up{i}", (d, 4 * d)),
            (f"up_b{i}", (4 * d,)),
            (f"down{i}", (4 * d, d)),
            (f"down_b{i}", (d,)),
        ]
    return [*found, ("head", (d, CLASSES))]


class _DataWriter:
    """Initializers inline (raw_data), or appended to one external data file, 4 KiB aligned
    as onnx's own save_as_external_data aligns big tensors (so they can be memory-mapped)."""

    ALIGN = 4096

    def __init__(self, data_path: Path | None) -> None:
        self.data_path = data_path
        self.handle = None if data_path is None else data_path.open("wb")

    def __enter__(self) -> _DataWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()

    def tensor(self, name: str, values: np.ndarray) -> onnx.TensorProto:
        from onnx import TensorProto, numpy_helper

        if self.handle is None or self.data_path is None:
            return numpy_helper.from_array(values, name)
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=values.shape)
        offset = -self.handle.tell() % self.ALIGN + self.handle.tell()
        self.handle.seek(offset)
        self.handle.write(values.tobytes())
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", self.data_path.name),
            ("offset", str(offset)),
            ("length", str(values.nbytes)),
        ):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        return tensor
