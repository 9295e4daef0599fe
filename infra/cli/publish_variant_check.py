"""Checks of a `publish --quantize` variant before it is published: that onnxruntime loads it
(in a child process), that it loses no more than allowed of its source's metric on --data (its
answers against its source's: publish_variant_answers.py), and how fast it runs a row against
its source.

The load runs in a child process because onnxruntime may crash there, not raise: 1.32 dies
with SIGSEGV creating a session (ORT_ENABLE_ALL, serving's level and publish's) for the fp16
variant of a torch nn.TransformerEncoder export. In publish's own process that ended the CLI
with exit 139 and no word, and left the publish's private folder (a full copy of the model's
weights) in /tmp after every attempt. The child loads it as publish checks and as serving
loads it, so a variant that crashes either never reaches the store.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.runtime.errors import BadRequest
from functions.runtime.manifest import ModelManifest
from functions.runtime.mapped_weights import MIN_FILE_BYTES
from infra.cli.model_files import total_bytes
from infra.cli.publish_variant_answers import MAX_COMPARED_BYTES, probe_rows
from infra.cli.quantize_reasons import HALF_WEIGHTS, already_quantized
from training.int8_latency import MAX_INT8_SLOWDOWN, row_latency_us
from training.spec import ExportSpec

# The metric points (accuracy, or R2, x 100) a variant may lose on --data: training's default.
MAX_DROP = ExportSpec().max_metric_drop
LATENCY_BUDGET_S = 5.0

# onnxruntime only: the child imports nothing of aiaas. Both levels of publish's checking
# session (no weight prepacking) and serving's (prepacking), at the default ORT_ENABLE_ALL.
_LOAD = """
import sys
import onnxruntime as ort
for prepack in ("1", "0"):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.disable_prepacking", prepack)
    ort.InferenceSession(sys.argv[1], options, providers=["CPUExecutionProvider"])
"""


def _load_in_child(target: Path) -> tuple[subprocess.CompletedProcess[str], str | None]:
    """onnxruntime's load of `target` in a child process, and the signal that killed it."""
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode >= 0:
        return done, None
    try:
        return done, signal.Signals(-done.returncode).name
    except ValueError:
        return done, f"signal {-done.returncode}"


def check_half_source_loads(source: Path) -> None:
    """A BadRequest when onnxruntime crashes loading a float16 (or bfloat16) model `source`,
    loaded in a child process first: onnxruntime 1.32 dies with SIGSEGV on some (a torch
    TransformerEncoder's fp16 export), and publish ended with exit 139 and no word. A
    refusal onnxruntime raises is left to publish's own load, which says it. A single file of
    MIN_FILE_BYTES or more is not read for it: its graph would be parsed with every weight."""
    if source.stat().st_size >= MIN_FILE_BYTES:
        return
    try:
        half = already_quantized(source) == ("fp16", HALF_WEIGHTS)
    except Exception:  # no onnx (a base install), or no graph it parses: publish's load says
        return
    if not half:
        return
    _, crash = _load_in_child(source)
    if crash is not None:
        raise BadRequest(
            f"onnxruntime crashed ({crash}) loading {source.name}, a model of float16 weights, so "
            "serving would too; publish its float32 export (--quantize fp16 then makes a float16 "
            "variant, checked the same way), or try a newer onnxruntime"
        )


def check_loads(target: Path, method: str, *, ml_operators: bool = False) -> None:
    """A BadRequest unless onnxruntime loads `target` in a child process, naming the crash;
    `ml_operators`: the source is a scikit-learn pipeline's graph (ai.onnx.ml operators)."""
    done, name = _load_in_child(target)
    if done.returncode == 0:
        return
    if name is not None:
        other = "int8" if method == "fp16" else "fp16"
        raise BadRequest(
            f"--quantize {method}: onnxruntime crashed ({name}) loading the {method} variant of "
            f"this model, so serving would too; publish with --quantize {other}, or without "
            "--quantize"
        )
    if method == "fp16" and ml_operators:
        # The converter leaves the ai.onnx.ml operators' tensors float32 and makes their
        # neighbours float16: onnxruntime then refuses "Sub bound to different types".
        raise BadRequest(
            "--quantize fp16 cannot convert this scikit-learn pipeline (its ai.onnx.ml "
            "operators stay float32 beside float16 nodes, which onnxruntime refuses); publish "
            "with --quantize int8, or without --quantize"
        )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    said = lines[-1] if lines else f"exit status {done.returncode}"
    said = said.replace(str(target), "the variant")
    raise BadRequest(f"--quantize {method} does not apply to this model: {said[:300]}")


def drop_points(measured: Mapping[str, Any], label_variance: float) -> float:
    """The points of accuracy, or of R2 x 100 (training's measure) for an RMSE, the variant
    lost on the --data rows (negative: it gained)."""
    if measured["metric"] == "accuracy":
        return float(measured["before"] - measured["after"]) * 100
    if label_variance <= 0:
        return 0.0
    grown = measured["after"] ** 2 - measured["before"] ** 2  # R2 = 1 - MSE / var(y)
    return float(grown / label_variance) * 100


def check_drop(
    method: str, measured: Mapping[str, Any], dropped: float, allowed: float, data: Path
) -> None:
    """A BadRequest when the variant lost more than `allowed` points on `data`."""
    if not dropped > allowed:
        return
    measure = "accuracy" if measured["metric"] == "accuracy" else "R2 (from RMSE)"
    raise BadRequest(
        f"--quantize {method}: the metric dropped more than allowed: {measure} fell "
        f"{dropped:.2f} points on {measured['rows']} rows of {data.name} ({measured['metric']} "
        f"{measured['before']:.4g} before, {measured['after']:.4g} after; at most {allowed:g} "
        f"allowed); nothing published. Publish without --quantize, try the other method, or "
        "pass --max-drop POINTS to accept it"
    )


def latency(source: Path, variant: Path, manifest: ModelManifest) -> dict[str, Any] | None:
    """Median single-row latency of both files as training's int8 check measures it, on one
    made-up row; None when the graph refuses it or the source is over MAX_COMPARED_BYTES."""
    feeds = probe_rows(manifest)
    if not feeds or total_bytes(source) > MAX_COMPARED_BYTES:
        return None
    row = {name: values[3:4] for name, values in feeds.items()}  # the row at scale 1
    try:
        float_us, variant_us = row_latency_us(source, variant, row, LATENCY_BUDGET_S)
    except Exception:  # onnxruntime's refusal of made-up values: no row to time
        return None
    return {
        "source_row_us": round(float_us, 2),
        "variant_row_us": round(variant_us, 2),
        "slowdown": round(variant_us / float_us, 3) if float_us else None,
    }


def latency_note(method: str, timed: Mapping[str, Any]) -> str | None:
    """A warning when the variant runs a row slower than training's int8 check allows; the
    check itself is named for int8 only (an fp16 warning spoke of int8's rule)."""
    slowdown = timed.get("slowdown")
    if slowdown is None or slowdown <= MAX_INT8_SLOWDOWN:
        return None
    rule = (
        f"; aiaas train refuses an int8 model over {MAX_INT8_SLOWDOWN}x slower unless it "
        "quantizes for size"
        if method == "int8"
        else ""
    )
    return (
        f"warning: the {method} variant runs a row {slowdown:.2f}x slower than the source on "
        f"this CPU ({timed['variant_row_us']:.0f} us against {timed['source_row_us']:.0f} us"
        f"{rule}): it is smaller, not faster"
    )
