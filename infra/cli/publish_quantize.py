"""`aiaas publish --quantize int8|fp16`: publish a smaller variant of a model, its cost measured.

int8: onnxruntime's `quantize_dynamic` (int8 weights of MatMul, Gemm, Gather, ...; activations
quantized per call), default options but a default tensor type (below). fp16: `onnxruntime.transformers.float16`, which ships with
onnxruntime (no other package), with `keep_io_types=True` so inputs and outputs stay float32 and
clients send and read what they did before. An already int8 or fp16 file, a variant that is no
smaller (no float weights of the kinds the method stores smaller: tree ensembles, ai.onnx.ml
operators, a GRU's; quantize_reasons names them) or one that onnxruntime cannot run is refused;
nothing is published.

A model keeping its weights in external data files (as one over 2 GB must) gets a variant in
the same form, `model.onnx` plus `model.onnx.data`, published as a multi-file version; sizes
count every file. Both quantizers need the weights in memory, and each writes a shape-inferred
copy of the graph beside its input (external data is named relative to the model's folder): the
input is a private copy (`model_files.stage`), its data files real copies, as `onnx` reads them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.runtime.errors import BadRequest
from functions.runtime.file_hashes import sha256_file
from infra.cli import quantize_reasons
from infra.cli.model_files import data_files, describe_data_files, stage, total_bytes
from infra.cli.publish_variant_check import check_loads

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


def _int8(source: Path, target: Path, external: bool) -> None:
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from functions.runtime.weight_shapes import without_weight_shapes

    # With external data the quantizer writes its weights to `<target name>.data` (read from
    # the path: a loaded model over 2 GB cannot be passed); else a copy less the shapes
    # recorded for weights, which onnxruntime < 1.32 refused torch exports on.
    model = source if external else without_weight_shapes(source)
    # DefaultTensorType: the type of a tensor shape inference leaves untyped (an ai.onnx.ml
    # Scaler's output, as skl2onnx's StandardScaler + PCA + MLP pipeline has). Without it the
    # quantizer refused that pipeline ("Unable to find data type for weight_name"); with it
    # 181 KB -> 51 KB, accuracy unchanged.
    quantize_dynamic(
        model,
        target,
        weight_type=QuantType.QInt8,
        use_external_data_format=external,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )


def _fp16(source: Path, target: Path, external: bool) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # Given a path, the converter infers shapes with infer_shapes_path, which takes a model
    # over 2 GB (infer_shapes on a loaded one cannot); a single file is under 2 GB.
    model = convert_float_to_float16(
        str(source) if external else onnx.load(str(source)), keep_io_types=True
    )
    if external:
        onnx.save_model(
            model,
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{target.name}.data",
        )
    else:
        onnx.save(model, str(target))


def _ml_operators(source: Path) -> bool:
    """Whether the graph holds ai.onnx.ml operators (a scikit-learn pipeline's), read from the
    file's opset imports without loading its weights."""
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    return any(op.domain == "ai.onnx.ml" for op in model.opset_import)


def _one_opset_each(staged: Path) -> None:
    """Drop repeated, identical opset imports from the staged copy (a new file renamed over
    the placed one, which may be a link to the user's: theirs is never written). skl2onnx
    1.20 writes `ai.onnx` twice for a linear model without ZipMap (`[ai.onnx.ml 1, "" 22,
    "" 22]`), which onnxruntime runs but its quantizer refuses: "Failed to find proper
    ai.onnx domain", where the reason a user can act on was the model's ai.onnx.ml ops."""
    import onnx

    model = onnx.load(str(staged), load_external_data=False)
    seen = {(op.domain, op.version) for op in model.opset_import}
    if len(seen) == len(model.opset_import):
        return
    kept = list(dict.fromkeys((op.domain, op.version) for op in model.opset_import))
    del model.opset_import[:]
    model.opset_import.extend(onnx.helper.make_opsetid(domain, v) for domain, v in kept)
    fresh = staged.with_name(f"{staged.name}.opsets")
    onnx.save(model, str(fresh))  # external data stays where it is: the references are kept
    fresh.replace(staged)


def _needs(missing: ModuleNotFoundError) -> BadRequest:
    return BadRequest(
        f"--quantize needs the {missing.name} package, which is not installed: "
        "pip install 'aiaas[quantize]'"
    )


def _out_of_space(exc: BaseException | None) -> bool:
    """Whether `exc`, or what it was raised from, is a full file system or quota."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _no_space(method: str, source: Path, variant: Path, work: Path) -> BadRequest:
    """The variant's write ran out of space in TMPDIR: named with what this publish needs there
    (its copies of the model, and the variant, at most the model's size) against what TMPDIR
    has free without them. It read "does not apply to this model", blaming the model."""
    shutil.rmtree(variant, ignore_errors=True)
    files = (p.lstat() for p in work.rglob("*") if p.is_file() and not p.is_symlink())
    held = sum(st.st_size for st in files if st.st_nlink == 1)  # a link holds the user's bytes
    need_mb = (held + total_bytes(source)) / 1e6
    free_mb = (shutil.disk_usage(work).free + held) / 1e6
    return BadRequest(
        f"--quantize {method}: no space left in TMPDIR ({work.parent}) writing the variant: "
        f"this publish needs up to {need_mb:.0f} MB there (its copies of the model and the "
        f"variant), {free_mb:.0f} MB is free; free space there, or set TMPDIR to a folder "
        "with more"
    )


def quantize(source: Path, method: str, work: Path) -> Path:
    """The variant of `source` by `method`, checked to load and be smaller; else a BadRequest
    (one naming a missing external data file before any work). onnxruntime loads it in a
    child process (publish_variant_check), where a crash is a refusal, not publish's end."""
    try:
        done = quantize_reasons.already_quantized(source)
    except ModuleNotFoundError as exc:
        raise _needs(exc) from None
    if done is not None:  # else the quantizers fail each its own way, or grow the file
        raise BadRequest(
            f"--quantize {method}: this file is already {done[0]} ({done[1]}); publish it "
            "without --quantize, or quantize its float32 original"
        )
    external = bool(data_files(source))
    given = stage(source, work / f"quantize-{method}-input", copy_data=True).resolve()
    _one_opset_each(given)
    target = (work / f"quantized-{method}" / "model.onnx").resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # In the variant's own (new) folder: onnx's saver looks for an existing external data
        # file `model.onnx.data` in the working directory, not the model's, and refused the
        # variant of a user who ran publish in a folder holding one (their own model's).
        with _quiet(), contextlib.chdir(target.parent):
            (_int8 if method == "int8" else _fp16)(given, target, external)
    except ModuleNotFoundError as exc:
        raise _needs(exc) from None
    except Exception as exc:  # the quantizers raise untyped errors
        if _out_of_space(exc):  # TMPDIR's fault, not the model's
            raise _no_space(method, source, target.parent, work) from None
        said = str(exc).replace(str(target.parent), "").replace(str(work), "")
        raise BadRequest(
            f"--quantize {method} does not apply to this model: {said[:300]}"
        ) from None
    # In a child process: onnxruntime may crash loading a variant (SIGSEGV), not raise.
    check_loads(target, method, ml_operators=_ml_operators(source))
    before, after = total_bytes(source), total_bytes(target)
    if after > before * MAX_SHARE:
        raise BadRequest(quantize_reasons.not_smaller(method, (before, after), target, MAX_SHARE))
    return target


def record(method: str, source: Path, target: Path) -> dict[str, Any]:
    """What the manifest says about the variant: method, source file (and its data files)
    and sizes, every file counted."""
    before, after = total_bytes(source), total_bytes(target)
    origin: dict[str, Any] = {
        "file": source.name,
        "sha256": sha256_file(source),
        "size": source.stat().st_size,
    }
    if data := describe_data_files(source):
        origin["data_files"] = data
    return {
        "method": method,
        "tool": DESCRIBED[method],
        "source": origin,
        "source_bytes": before,
        "quantized_bytes": after,
        "size_ratio": round(after / before, 4),
    }


def batch_note(alone: Mapping[str, Any], metric: str) -> str:
    """What publish says when the int8 variant answers some rows alone otherwise than in a
    batch (a label, a regressor's value by over 0.1%, a row of several values by over 2%): its
    activations are quantized with one scale for the whole request."""
    rows, same = alone["rows"], alone["same_answer_share"]
    differ = rows - round(same * rows)
    other = {
        "accuracy": "another answer than",
        "outputs": "values over 2% of their length away from the ones",
    }.get(metric, "a value over 0.1% away from the one")
    return (
        f"warning: int8 answers depend on the other rows of a request (its activations are "
        f"scaled per request): of {rows} rows sent alone, {differ} got {other} in a batch "
        f"(outputs moved by up to {alone['max_abs_output_diff']:.3g}); fp16 does not"
    )
