"""Reading an ONNX file's signature, for publishing models this project did not train.

Publish-time only: uses onnxruntime for the graph's inputs and outputs and, when the `onnx`
package is installed, the file's opset and producer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from functions.runtime.cache import sha256_file
from functions.runtime.dtypes import from_ort
from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelFile, TensorSpec


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    file: ModelFile


def _specs(args: list[ort.NodeArg], *, finite: bool) -> tuple[TensorSpec, ...]:
    specs = []
    for arg in args:
        dtype = from_ort(arg.type).name
        # Symbolic or unknown dims (None, "N", "batch") are dynamic.
        shape = tuple(dim if isinstance(dim, int) and dim > 0 else -1 for dim in arg.shape)
        specs.append(
            TensorSpec(arg.name, dtype, shape, finite=finite and dtype.startswith("float"))
        )
    return tuple(specs)


def read_signature(path: Path, *, finite_inputs: bool = True) -> OnnxSignature:
    """Inputs, outputs, opset, producer, size and sha256 of the ONNX file at `path`."""
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise BadRequest(f"{path} is not an ONNX model onnxruntime can load: {exc}") from exc
    meta = session.get_modelmeta()
    producer = meta.producer_name or "unknown"
    opset = 0
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        opset = max(
            (o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0
        )
        if proto.producer_version:
            producer = f"{producer} {proto.producer_version}"
    except ImportError:
        pass
    return OnnxSignature(
        inputs=_specs(session.get_inputs(), finite=finite_inputs),
        outputs=_specs(session.get_outputs(), finite=False),
        file=ModelFile(
            sha256=sha256_file(path), size=path.stat().st_size, opset=opset, producer=producer
        ),
    )
