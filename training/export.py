"""ONNX export with a dynamic batch axis, a torch-vs-onnxruntime parity check, and int8.

Parity is a hard gate: if onnxruntime's outputs differ from torch's by more than the
tolerance (1e-4 by default) on held-out rows, the job fails and nothing is published.
Dynamic int8 quantization is kept only when the primary metric drops by at most the allowed
number of points and, unless the spec quantizes for size, when it is not slower than float32
on a single row; every outcome is recorded with its reason.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from training.errors import ExportError
from training.int8_latency import MAX_INT8_SLOWDOWN, row_latency_us
from training.metrics import PRIMARY, score
from training.prepare import PreparedData
from training.preprocess_graph import join_preprocessing
from training.spec import ExportSpec
from training.table_prep import OUTPUT_NAMES

log = logging.getLogger("aiaas.training")


@dataclass(frozen=True)
class Signature:
    """Graph input and output names, and whether the input's second axis (tokens) is dynamic."""

    input_name: str
    output_name: str
    dynamic_length: bool


def signature_for(data: PreparedData) -> Signature:
    """`tokens` (int64 [-1, -1]) for text; else `x` (float32 [-1, *row])."""
    output = OUTPUT_NAMES[data.task]
    if data.vocabulary is not None:
        return Signature("tokens", output, True)
    return Signature("x", output, False)


def export_onnx(model: nn.Module, data: PreparedData, spec: ExportSpec, path: Path) -> Path:
    """Write `model` to `path` as ONNX with a dynamic batch (and token length) axis."""
    sig = signature_for(data)
    model = model.cpu().eval()
    example = torch.from_numpy(data.train.x[:2])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _quiet():
            if spec.exporter == "dynamo":
                axes = {0: torch.export.Dim("batch")}
                if sig.dynamic_length:
                    axes[1] = torch.export.Dim("length")
                program = torch.onnx.export(
                    model, (example,), input_names=[sig.input_name], output_names=[sig.output_name],
                    opset_version=spec.opset, dynamo=True, dynamic_shapes=(axes,), verbose=False,
                )  # fmt: skip
                assert program is not None
                program.save(str(path))
            else:
                names = {0: "batch", 1: "length"} if sig.dynamic_length else {0: "batch"}
                torch.onnx.export(
                    model, (example,), str(path), input_names=[sig.input_name],
                    output_names=[sig.output_name], opset_version=spec.opset, dynamo=False,
                    dynamic_axes={sig.input_name: names, sig.output_name: {0: "batch"}},
                )  # fmt: skip
    except Exception as exc:  # the exporters raise many unrelated types
        raise ExportError(f"ONNX export ({spec.exporter}) failed: {exc}") from exc
    _check_opset(path, spec)
    if data.table is not None:  # the served file takes raw columns: fill and encode in-graph
        join_preprocessing(path, data.table)
    return path


def _check_opset(path: Path, spec: ExportSpec) -> None:
    """The file holds the opset the spec asked for: the dynamo exporter writes 18 and converts
    down, and where a conversion fails (`No Adapter From Version 14 for Sub`) it kept 18 with a
    warning `_quiet` hid, so `opset: 13` (or 99) gave an opset-18 file, unsaid."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    written = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if written is not None and written != spec.opset:
        raise ExportError(
            f"the {spec.exporter} exporter wrote opset {written}, not export.opset {spec.opset}: "
            f"it could not convert this model to {spec.opset}; set export.opset to {written}"
            # torchscript writes the opsets below 18 itself; above, it is no way out
            + (" or exporter: torchscript" if spec.exporter == "dynamo" and spec.opset < 18 else "")
        )


@contextlib.contextmanager
def _quiet() -> Any:
    # The exporters and the quantizer print progress, deprecation and "consider pre-processing"
    # chatter through print, warnings and logging; a job's output stays readable.
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with _fd1_to_stderr(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def _fd1_to_stderr() -> Any:
    """Send what C++ writes to file descriptor 1 to stderr: torchscript's "Torch IR graph at
    exception" dump bypasses sys.stdout, and stdout is `aiaas train --json`'s one document."""
    if sys.stdout is not None:
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (a daemon's closed stdout): nothing to keep clean
        saved = -1
    if saved < 0:
        yield
        return
    try:
        os.dup2(2, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


Feeds = np.ndarray | Mapping[str, np.ndarray]


def run_onnx(path: Path | ort.InferenceSession, x: Feeds) -> np.ndarray:
    """The ONNX model's single output for `x`: its one input's rows, or feeds by input name."""
    sess = session(path) if isinstance(path, Path) else path
    feeds = dict(x) if isinstance(x, Mapping) else {sess.get_inputs()[0].name: x}
    return np.asarray(sess.run(None, feeds)[0])


def check_parity(
    model: nn.Module,
    path: Path,
    x: np.ndarray,
    spec: ExportSpec,
    scale: float = 1.0,
    served: Feeds | None = None,
) -> dict[str, Any]:
    """Compare torch and onnxruntime on `x` (held-out rows); ExportError beyond tolerance.

    `served`: the same rows as the served file takes them, when it differs from the network's
    (a table's raw columns, gaps and strings: torch reads them filled and encoded).

    The tolerance is in the network's own output units: logits for a classifier, target standard
    deviations for a regressor (`scale`, the target's std). A regressor's head maps back to
    target units, so for prices around 300,000 float32's own spacing (0.03) is already 300x an
    absolute 1e-4 and every such job failed, whatever the export; and for a target of std 2e-7
    an absolute 1e-4 is 500 stds, which let a dropped offset pass. Never below 4 float32 steps
    at the outputs' magnitude (a target of mean 1,000 and std 0.001).
    """
    rows = x[: spec.parity_rows]
    with torch.inference_mode():
        expected = model.cpu().eval()(torch.from_numpy(rows)).numpy()
    got = run_onnx(path, rows if served is None else served)
    if got.shape != expected.shape:
        raise ExportError(f"ONNX output shape {list(got.shape)} != torch {list(expected.shape)}")
    diff = float(np.abs(got.astype(np.float64) - expected).max())
    # In target stds, whatever the target's size: an absolute 1e-4 let an export error of 40
    # stds pass for a target of std 2e-7. Never below 4 float32 steps at the outputs' size.
    resolution = 4 * float(np.spacing(np.float32(np.abs(expected).max(initial=0.0))))
    allowed = max(spec.parity_tolerance * scale, resolution)
    parity = {"max_abs_diff": diff, "rows": len(rows), "tolerance": spec.parity_tolerance}
    if scale != 1.0:
        parity |= {"scale": scale, "allowed": allowed}
    elif allowed > spec.parity_tolerance:  # the float32 floor (manifest_summary says so)
        parity |= {"allowed": allowed}
    if not diff <= allowed:  # `not <=` also catches NaN
        scaled = f" x target std {scale:.4g} = {allowed:.3g}" if scale != 1.0 else ""
        raise ExportError(
            f"onnxruntime differs from torch by {diff:.3g} on {len(rows)} held-out rows "
            f"(tolerance {spec.parity_tolerance:g}{scaled}); not publishing"
        )
    return parity


def _verdict(accurate: bool, fast: bool, objective: str) -> str:
    if not accurate:
        return "metric dropped more than allowed"
    if not fast and objective == "speed":
        return f"int8 is slower than float32 on this CPU (over {MAX_INT8_SLOWDOWN}x)"
    return "within the metric budget" + ("" if fast else "; slower, kept for size")


def quantization_gate(
    path: Path, data: PreparedData, spec: ExportSpec, out: Path
) -> tuple[Path, dict[str, Any]]:
    """Try dynamic int8; return the file to publish and the record of the decision."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from functions.runtime.weight_shapes import without_weight_shapes

    metric = PRIMARY[data.task]
    classes = len(data.labels)
    test = data.served_test()
    float_score = score(data.task, data.test.y, run_onnx(path, test), classes)[metric]
    try:
        with _quiet():
            quantize_dynamic(without_weight_shapes(path), out, weight_type=QuantType.QInt8)
        int8_score = score(data.task, data.test.y, run_onnx(out, test), classes)[metric]
    except Exception as exc:  # onnxruntime's quantizer raises untyped errors
        log.warning("int8 quantization failed, keeping float32: %s", exc)
        return path, {"enabled": True, "kept": False, "error": str(exc)[:300]}
    drop = (float_score - int8_score) * 100
    float_us, int8_us = row_latency_us(path, out, data.served_test(1))
    accurate = drop <= spec.max_metric_drop
    fast = int8_us <= float_us * MAX_INT8_SLOWDOWN
    kept = accurate and (fast or spec.quantize_for == "size")
    record = {
        "enabled": True,
        "kept": kept,
        "reason": _verdict(accurate, fast, spec.quantize_for),
        "quantize_for": spec.quantize_for,
        "metric": metric,
        "float_metric": float_score,
        "int8_metric": int8_score,
        "drop_points": round(drop, 4),
        "max_drop_points": spec.max_metric_drop,
        "float_bytes": path.stat().st_size,
        "int8_bytes": out.stat().st_size,
        "float_row_latency_us": round(float_us, 2),
        "int8_row_latency_us": round(int8_us, 2),
    }
    return (out if kept else path), record
