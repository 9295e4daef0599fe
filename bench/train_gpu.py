"""Training on a CUDA GPU: training.Trainer against hand-written loops, in float32 and in mixed
precision, and export parity of CUDA-trained models.

    python -m bench.train_gpu [--epochs 5] [--repeats 3] [--no-export] [--json] [--device cpu]

For each demo spec and a synthetic MLP (`--rows` x 256 features, 1024-1024 hidden, batch 1024),
then training speed alone for wider synthetic MLPs (`--widths`, `--wide-rows` rows: where mixed
precision starts to pay), in the same run, interleaved, `--repeats` fits of `--epochs` epochs
from the same initial weights each:

- hand fp32: the loop a person writes for data that fits on the GPU: tensors moved there once,
  a device randperm each epoch, index, forward, loss, backward, step;
- hand AMP fp16: the same under torch.autocast(float16) with a GradScaler (PyTorch's AMP recipe);
- hand AMP bf16: the same under torch.autocast(bfloat16), no scaler (Ampere and newer);
- Trainer fp32 / Trainer AMP: `aiaas train`'s loop (`precision: fp32` / `amp`), its training
  passes only (no validation). A job's `precision: auto` picks one (training/device.py).

Then each demo spec is trained as its job would be (its own epochs and early stopping) on the
device, exported, and onnxruntime (CPU, as served) is compared with the CPU copy of the model
(the job's parity gate) and with the model's outputs on the device, fp32 and under autocast;
each one's test metric is printed. `--device cpu` runs the fp32 paths on the CPU: a smoke test.
Not a test: prints figures for training/README.md and docs/benchmarks/training_gpu.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.args import count
from training.datasets import load_raw
from training.device import DeviceSetup, resolve_device
from training.export import check_parity, export_onnx, run_onnx
from training.metrics import score
from training.prepare import PreparedData, prepare
from training.recipes import CATALOG
from training.recipes.build import build_model
from training.spec import JobSpec, load_spec
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("digits-mlp", "digits-cnn", "waveforms-gru", "intents-transformer")
SYNTHETIC = """name: synthetic-mlp-{width}
task: classification
description: 256 noisy features, 10 classes (bench/train_gpu.py).
dataset: {{path: {path}}}
recipe:
  name: mlp
  params: {{hidden: [{width}, {width}], dropout: 0.1}}
epochs: 3
batch_size: 1024
learning_rate: 0.001
schedule: constant
seed: 0
"""

Loop = Callable[[nn.Module, PreparedData, JobSpec, int, torch.device], float]


def synthetic_spec(folder: Path, rows: int, width: int) -> Path:
    """A 10-class problem with learnable structure: labels from a random linear map plus noise."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 256), dtype=np.float32)
    logits = x @ rng.standard_normal((256, 10), dtype=np.float32)
    y = (logits + rng.standard_normal(logits.shape, dtype=np.float32) * 2).argmax(1)
    data = folder / f"synthetic-{rows}.npz"
    np.savez(data, x=x, y=y.astype(np.int64))
    spec = folder / f"synthetic-mlp-{width}.yaml"
    spec.write_text(SYNTHETIC.format(path=data, width=width))
    return spec


def _loss(data: PreparedData, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if data.labels:
        return nn.functional.cross_entropy(outputs.float(), target)
    return nn.functional.mse_loss(outputs.float(), target)


def hand_loop(dtype: torch.dtype | None) -> Loop:
    """The hand-written loop, under autocast to `dtype` (None: fp32); fp16 takes a GradScaler."""

    def run(
        model: nn.Module, data: PreparedData, spec: JobSpec, epochs: int, device: torch.device
    ) -> float:
        model = model.to(device)
        x = torch.from_numpy(data.train.x).to(device)
        y = torch.from_numpy(data.train.y).to(device)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay
        )
        scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
        generator = torch.Generator(device).manual_seed(spec.seed)
        autocast = (
            (lambda: torch.autocast(device.type, dtype=dtype))
            if dtype is not None
            else contextlib.nullcontext
        )
        _sync(device)
        started = time.perf_counter()
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=generator, device=device)
            for batch in torch.split(order, spec.batch_size):
                with autocast():
                    loss = _loss(data, model(x[batch]), y[batch])
                optimizer.zero_grad(set_to_none=True)
                if scaler is None:
                    loss.backward()
                    optimizer.step()
                else:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
        _sync(device)
        return time.perf_counter() - started

    return run


def trainer_loop(amp: bool) -> Loop:
    """The Trainer's training passes alone (its per-epoch validation is not counted)."""

    def run(
        model: nn.Module, data: PreparedData, spec: JobSpec, epochs: int, device: torch.device
    ) -> float:
        spec = dataclasses.replace(spec, epochs=epochs)
        setup = resolve_device(device.type, amp=amp)
        result = Trainer(spec, data, setup, progress=False).fit(model)
        return sum(r.train_seconds for r in result.history)

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure_training(
    spec: JobSpec, data: PreparedData, epochs: int, repeats: int, device: torch.device
) -> dict[str, Any]:
    spec = dataclasses.replace(
        spec,
        epochs=epochs,
        early_stopping=None,
        schedule=dataclasses.replace(spec.schedule, name="constant"),
    )
    loops: dict[str, Loop] = {"hand fp32": hand_loop(None), "Trainer fp32": trainer_loop(False)}
    if device.type == "cuda":
        loops["hand AMP fp16"] = hand_loop(torch.float16)
        loops["hand AMP bf16"] = hand_loop(torch.bfloat16)
        loops["Trainer AMP"] = trainer_loop(True)
    initial = build_model(spec, data)
    for loop in loops.values():  # warm each path once (kernels, cuBLAS handles, allocator)
        loop(copy.deepcopy(initial), data, spec, 1, device)
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(repeats):
        for name, loop in loops.items():
            seconds[name].append(loop(copy.deepcopy(initial), data, spec, epochs, device))
    steps = -(-len(data.train.y) // spec.batch_size)
    out: dict[str, Any] = {
        "train_rows": len(data.train.y),
        "batch_size": spec.batch_size,
        "epochs": epochs,
        "parameters": sum(p.numel() for p in initial.parameters()),
    }
    for name, values in seconds.items():
        median = statistics.median(values)
        out[name] = {
            "epoch_ms": [round(v / epochs * 1e3, 2) for v in values],
            "step_us": round(median / (epochs * steps) * 1e6, 1),
        }
    return out


def _device_outputs(
    model: nn.Module, x: np.ndarray, device: torch.device, amp: torch.dtype | None
) -> np.ndarray:
    """`model`'s outputs for `x` computed on `device`, under autocast to `amp` (None: fp32)."""
    model = copy.deepcopy(model).to(device).eval()
    context = torch.autocast(device.type, dtype=amp) if amp else contextlib.nullcontext()
    with torch.inference_mode(), context:
        outputs: np.ndarray = model(torch.from_numpy(x).to(device)).float().cpu().numpy()
    return outputs


def measure_export(spec: JobSpec, data: PreparedData, setup: DeviceSetup) -> dict[str, Any]:
    """Train as the job would on `setup`, export, and compare onnxruntime with torch."""
    started = time.perf_counter()
    result = Trainer(spec, data, setup, progress=False).fit(build_model(spec, data))
    out: dict[str, Any] = {
        "device": setup.description,
        "fit_s": round(time.perf_counter() - started, 2),
        "epochs_run": len(result.history),
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
    }
    x, y = data.test.x, data.test.y
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(result.model, data, spec.export, path)
        out["parity_vs_cpu_torch"] = check_parity(result.model, path, x, spec.export)
        onnx_out = run_onnx(path, x)
    compared = {"onnxruntime": onnx_out}
    compared[f"torch {setup.device.type} fp32"] = _device_outputs(
        result.model, x, setup.device, None
    )
    if setup.amp:
        compared[f"torch cuda autocast {setup.amp_dtype}"] = _device_outputs(
            result.model, x, setup.device, setup.amp_dtype
        )
    classes = len(data.labels)
    for name, outputs in compared.items():
        entry: dict[str, Any] = {
            "max_abs_diff_vs_onnxruntime": float(np.abs(outputs - onnx_out).max()),
            "test_metrics": {
                k: round(float(v), 4)
                for k, v in score(spec.task, y, outputs, classes).items()
                if isinstance(v, float)
            },
        }
        if classes:
            entry["argmax_agrees"] = float((outputs.argmax(1) == onnx_out.argmax(1)).mean())
        out[name] = entry
    return out


def load(name: str, folder: Path, rows: int) -> tuple[JobSpec, PreparedData]:
    """A demo spec by name, or `synthetic-mlp-WIDTH` (two hidden layers of WIDTH)."""
    path = (
        synthetic_spec(folder, rows, int(name.rsplit("-", 1)[1]))
        if name.startswith("synthetic-mlp-")
        else ROOT / "training" / "specs" / f"{name}.yaml"
    )
    spec = load_spec(path)
    kind = CATALOG[spec.recipe.name].kind
    return spec, prepare(load_raw(spec.dataset, kind), spec, kind)


def report(name: str, result: dict[str, Any]) -> list[str]:
    t = result["training"]
    lines = [
        f"{name}: {t['train_rows']} rows, batch {t['batch_size']}, {t['parameters']:,} "
        f"parameters, {t['epochs']} epochs"
    ]
    base = statistics.median(t["hand fp32"]["epoch_ms"])
    for loop in ("hand fp32", "Trainer fp32", "hand AMP fp16", "hand AMP bf16", "Trainer AMP"):
        if loop in t:
            ms = t[loop]["epoch_ms"]
            lines.append(
                f"  {loop:14} epoch {min(ms):8.2f}-{max(ms):8.2f} ms  step {t[loop]['step_us']:7.1f}"
                f" us  hand fp32 / this: {base / statistics.median(ms):.2f}x"
            )
    if "export" not in result:
        return lines
    e = result["export"]
    lines.append(
        f"  {e['device']}: {e['epochs_run']} epochs in {e['fit_s']} s; export parity vs CPU "
        f"torch {e['parity_vs_cpu_torch']['max_abs_diff']:.3g} "
        f"(tolerance {e['parity_vs_cpu_torch']['tolerance']:g})"
    )
    for key, entry in e.items():
        if isinstance(entry, dict) and "test_metrics" in entry:
            agree = (
                f", argmax agrees {entry['argmax_agrees']:.4f}" if "argmax_agrees" in entry else ""
            )
            lines.append(
                f"    {key:26} max |diff| vs ORT {entry['max_abs_diff_vs_onnxruntime']:.3g}"
                f"{agree}, test {entry['test_metrics']}"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=count, default=5)
    parser.add_argument("--repeats", type=count, default=3)
    parser.add_argument("--rows", type=count, default=262_144, help="synthetic MLP rows")
    parser.add_argument("--specs", default=",".join((*SPECS, "synthetic-mlp-1024")))
    parser.add_argument(
        "--widths",
        default="2048,4096,8192",
        help="synthetic MLPs measured for training speed only (no export): where AMP pays",
    )
    parser.add_argument("--no-export", action="store_true", help="training speed only")
    parser.add_argument("--wide-rows", type=count, default=65_536, help="their rows")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", type=Path, help="also write the JSON object to this file")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("bench.train_gpu: no CUDA GPU (torch sees none); --device cpu for a smoke run")
        return 2
    setup = resolve_device(args.device)
    results: dict[str, Any] = {"device": setup.description, "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.specs.split(","):
            spec, data = load(name, Path(tmp), args.rows)
            results[name] = {
                "training": measure_training(spec, data, args.epochs, args.repeats, setup.device)
            }
            if not args.no_export:
                results[name]["export"] = measure_export(spec, data, setup)
            if not args.json:
                print("\n".join(report(name, results[name])), flush=True)
        for width in filter(None, args.widths.split(",")):
            name = f"synthetic-mlp-{width}"
            spec, data = load(name, Path(tmp), args.wide_rows)
            results[name] = {
                "training": measure_training(spec, data, args.epochs, args.repeats, setup.device)
            }
            if not args.json:
                print("\n".join(report(name, results[name])), flush=True)
    if args.json:
        print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
