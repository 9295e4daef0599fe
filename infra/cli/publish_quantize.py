"""`aiaas publish --quantize int8|fp16`: publish a smaller variant of a model, its cost measured.

int8: onnxruntime's `quantize_dynamic` (int8 weights of MatMul, Gemm, Gather, ...; activations
quantized per call), default options. fp16: `onnxruntime.transformers.float16`, which ships with
onnxruntime (no other package), with `keep_io_types=True` so inputs and outputs stay float32 and
clients send and read what they did before. A variant that is no smaller (no float weights of the
kinds the method stores smaller: tree ensembles, ai.onnx.ml operators, an already quantized
file) or that onnxruntime cannot run is refused; nothing is published.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

import onnxruntime as ort

from functions.runtime.cache import sha256_file
from functions.runtime.errors import BadRequest

METHODS = ("int8", "fp16")
DESCRIBED = {
    "int8": "onnxruntime.quantization.quantize_dynamic, int8 weights (QInt8)",
    "fp16": "onnxruntime.transformers.float16, float16 weights, float32 inputs and outputs",
}
# A variant must be at most this share of the source's size to be worth a version.
MAX_SHARE = 0.9


@contextlib.contextmanager
def _quiet() -> Any:
    """The quantizers print advice ("consider pre-processing") and warn per node: not ours."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8)


def _fp16(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    onnx.save(model, str(target))


def quantize(source: Path, method: str, work: Path) -> Path:
    """The variant of `source` by `method`, checked to load and be smaller; else a BadRequest."""
    target = work / f"model-{method}.onnx"
    try:
        with _quiet():
            (_int8 if method == "int8" else _fp16)(source, target)
        ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    except ModuleNotFoundError as exc:
        raise BadRequest(
            f"--quantize needs the {exc.name} package, which is not installed: "
            "pip install 'aiaas[quantize]'"
        ) from None
    except Exception as exc:  # the quantizers and onnxruntime raise untyped errors
        raise BadRequest(
            f"--quantize {method} does not apply to this model: {str(exc)[:300]}"
        ) from None
    before, after = source.stat().st_size, target.stat().st_size
    if after > before * MAX_SHARE:
        raise BadRequest(
            f"--quantize {method} does not make this model smaller ({before} -> {after} bytes): "
            "it has no float32 weights that the method stores in fewer bytes (tree ensembles, "
            "ai.onnx.ml operators, an already quantized model); publish it without --quantize"
        )
    return target


def record(method: str, source: Path, target: Path) -> dict[str, Any]:
    """What the manifest says about the variant: method, source file and sizes."""
    before, after = source.stat().st_size, target.stat().st_size
    return {
        "method": method,
        "tool": DESCRIBED[method],
        "source": {"file": source.name, "sha256": sha256_file(source), "size": before},
        "source_bytes": before,
        "quantized_bytes": after,
        "size_ratio": round(after / before, 4),
    }
