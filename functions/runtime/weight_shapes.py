"""A model for onnxruntime's int8 quantizer, less the shapes recorded for its weights.

torch's dynamo exporter records every weight's shape in `value_info`. onnxruntime's quantizer
before 1.32 turns a Gemm(transB=1) into a MatMul by transposing the weight in place under the
same name, and the stale [out, in] entry then fails its shape inference ("Inferred shape and
existing shape differ in dimension 0: (512) vs (64)"): int8 was never tried for such a model
(seen with onnxruntime 1.30.0 on a GPU machine; 1.32 writes the transposed copy under a new
name). Used by training's quantization gate and `aiaas publish --quantize int8`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def without_weight_shapes(path: Path) -> Any:
    """`path` loaded (an onnx.ModelProto), its value_info entries for initializers dropped."""
    import onnx

    model = onnx.load(str(path))
    weights = {t.name for t in model.graph.initializer}
    kept = [v for v in model.graph.value_info if v.name not in weights]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    return model
