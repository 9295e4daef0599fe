"""`python -m bench.binary_tensor_latency` on a small image: a model published with the real CLI
answers the OIP binary event through the handler, and the medians are printed as ratios."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_small_run_prints_the_handler_against_raw_onnxruntime() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.binary_tensor_latency", "--pixels", "8", "--repeat", "50"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "one 1x192 FP32 tensor (1 KB), ReduceMean, median of 50" in done.stdout
    for case in (
        "raw session.run",
        "the stdlib's strict base64 decode alone",
        "handler, OIP v2 binary",
    ):
        assert re.search(rf"  {case} +[\d.]+ us +[\d.]+x", done.stdout), done.stdout
