"""bench.train_gpu runs end to end on the CPU at a tiny size (its figures need a GPU): the
Trainer and the hand-written loop on a demo model and a synthetic MLP, then the export checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

REPO = Path(__file__).resolve().parents[2]


def test_the_bench_runs_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.train_gpu", "--device", "cpu", "--epochs", "1",
         "--repeats", "1", "--rows", "600", "--specs", "digits-mlp,synthetic-mlp-32",
         "--widths", "64", "--wide-rows", "600", "--out", str(out)],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"].startswith("cpu")
    for name in ("digits-mlp", "synthetic-mlp-32", "synthetic-mlp-64"):
        training = report[name]["training"]
        assert {"hand fp32", "Trainer fp32"} <= set(training), training
        assert training["Trainer fp32"]["step_us"] > 0
    export = report["digits-mlp"]["export"]
    assert export["parity_vs_cpu_torch"]["max_abs_diff"] <= 1e-4
    assert export["onnxruntime"]["argmax_agrees"] == 1.0
    assert "export" not in report["synthetic-mlp-64"]  # the wide ones: speed only
    assert "hand fp32 / this" in done.stdout


def test_it_says_when_there_is_no_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here")
    done = subprocess.run(
        [sys.executable, "-m", "bench.train_gpu"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "no CUDA GPU" in done.stdout
