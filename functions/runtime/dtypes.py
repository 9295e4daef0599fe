"""One table of element types: manifest name <-> numpy <-> onnxruntime <-> Open Inference Protocol."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DType:
    name: str  # as written in manifests (numpy's spelling; "string" for text)
    numpy: np.dtype[np.generic]
    ort: str  # onnxruntime's NodeArg.type
    oip: str  # Open Inference Protocol v2 datatype

    @property
    def wire(self) -> np.dtype[np.generic]:
        """The little-endian dtype binary tensors travel in."""
        return _WIRE[self.name]


TABLE: tuple[DType, ...] = (
    DType("bool", np.dtype(np.bool_), "tensor(bool)", "BOOL"),
    DType("int8", np.dtype(np.int8), "tensor(int8)", "INT8"),
    DType("int16", np.dtype(np.int16), "tensor(int16)", "INT16"),
    DType("int32", np.dtype(np.int32), "tensor(int32)", "INT32"),
    DType("int64", np.dtype(np.int64), "tensor(int64)", "INT64"),
    DType("uint8", np.dtype(np.uint8), "tensor(uint8)", "UINT8"),
    DType("uint16", np.dtype(np.uint16), "tensor(uint16)", "UINT16"),
    DType("uint32", np.dtype(np.uint32), "tensor(uint32)", "UINT32"),
    DType("uint64", np.dtype(np.uint64), "tensor(uint64)", "UINT64"),
    DType("float16", np.dtype(np.float16), "tensor(float16)", "FP16"),
    DType("float32", np.dtype(np.float32), "tensor(float)", "FP32"),
    DType("float64", np.dtype(np.float64), "tensor(double)", "FP64"),
    DType("string", np.dtype(np.object_), "tensor(string)", "BYTES"),
)

_WIRE = {d.name: d.numpy.newbyteorder("<") for d in TABLE}
BY_NAME = {d.name: d for d in TABLE}
BY_ORT = {d.ort: d for d in TABLE}
BY_OIP = {d.oip: d for d in TABLE}
BY_NUMPY = {d.numpy: d for d in TABLE}


# A ZipMap output (skl2onnx's default for classifiers' probabilities): one {class: probability}
# map per row, keyed by int64 or string class values. Served as a float32 [N, classes] tensor.
ZIPMAP_TYPES = {
    "seq(map(int64,tensor(float)))": "int64",
    "seq(map(string,tensor(float)))": "string",
}


def zipmap_type(keys: tuple[int, ...] | tuple[str, ...]) -> str:
    """The onnxruntime type of a ZipMap output whose class values are `keys`."""
    return (
        "seq(map(string,tensor(float)))"
        if isinstance(keys[0], str)
        else "seq(map(int64,tensor(float)))"
    )
