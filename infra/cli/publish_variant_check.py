"""Checks of a `publish --quantize` variant before it is published: that onnxruntime loads it,
in a child process.

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
from pathlib import Path

from functions.runtime.errors import BadRequest

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


def check_loads(target: Path, method: str, *, ml_operators: bool = False) -> None:
    """A BadRequest unless onnxruntime loads `target` in a child process, naming the crash;
    `ml_operators`: the source is a scikit-learn pipeline's graph (ai.onnx.ml operators)."""
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(target)], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
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
