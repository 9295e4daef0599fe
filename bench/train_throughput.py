"""Training throughput of training.Trainer against a plain hand-written torch loop, plus export.

    python -m bench.train_throughput [--epochs 20] [--repeats 7] [--spec training/specs/digits-mlp.yaml]

Same model (same initial weights), same data, optimizer, batch size, threads and device,
measured in the same run, interleaved, best of `--repeats`. The trainer's time includes what
it does beyond the loop (a validation pass and best-weights bookkeeping every epoch); the
hand-written loop only trains. Then: ONNX export time (both exporters), parity on held-out
rows, and dynamic int8 size and metric delta. Not a test: prints figures for the README.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.args import count, existing_file
from training.datasets import load_raw
from training.device import resolve_device
from training.export import check_parity, export_onnx, quantization_gate
from training.prepare import PreparedData, prepare
from training.recipes import CATALOG
from training.recipes.build import build_model
from training.spec import JobSpec, load_spec
from training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def hand_written_loop(model: nn.Module, data: PreparedData, spec: JobSpec, epochs: int) -> float:
    """The loop a person writes by hand: shuffle, slice, forward, loss, backward, step."""
    x, y = torch.from_numpy(data.train.x), torch.from_numpy(data.train.y)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay
    )
    generator = torch.Generator().manual_seed(spec.seed)
    loss_fn = nn.CrossEntropyLoss()
    started = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), spec.batch_size):
            batch = order[start : start + spec.batch_size]
            loss = loss_fn(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - started


def trainer_fit(model: nn.Module, data: PreparedData, spec: JobSpec) -> tuple[float, float]:
    """(wall seconds of the whole fit, seconds of its training passes alone)."""
    trainer = Trainer(spec, data, resolve_device("cpu"), progress=False)
    started = time.perf_counter()
    result = trainer.fit(model)
    return time.perf_counter() - started, sum(r.train_seconds for r in result.history)


def measure_training(
    spec: JobSpec, data: PreparedData, epochs: int, repeats: int
) -> dict[str, float]:
    spec = dataclasses.replace(
        spec,
        epochs=epochs,
        early_stopping=None,
        schedule=dataclasses.replace(spec.schedule, name="constant"),
    )
    initial = build_model(spec, data)
    # Warm both paths once (lazy kernels, allocator) before timing.
    trainer_fit(copy.deepcopy(initial), data, dataclasses.replace(spec, epochs=1))
    hand_written_loop(copy.deepcopy(initial), data, spec, 1)
    fits, passes, hand = [], [], []
    for _ in range(repeats):
        fit_s, train_s = trainer_fit(copy.deepcopy(initial), data, spec)
        fits.append(fit_s)
        passes.append(train_s)
        hand.append(hand_written_loop(copy.deepcopy(initial), data, spec, epochs))
    rows = len(data.train.y) * epochs
    return {
        "epochs": epochs,
        "train_rows": len(data.train.y),
        "trainer_train_s": min(passes),
        "trainer_fit_s": min(fits),
        "hand_loop_s": min(hand),
        "trainer_rows_per_s": rows / min(passes),
        "hand_loop_rows_per_s": rows / min(hand),
        "ratio": min(hand) / min(passes),
        "ratio_with_validation": min(hand) / min(fits),
    }


def measure_export(spec: JobSpec, data: PreparedData) -> dict[str, object]:
    model = (
        Trainer(spec, data, resolve_device("cpu"), progress=False)
        .fit(build_model(spec, data))
        .model
    )
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for exporter in ("dynamo", "torchscript"):
            export = dataclasses.replace(spec.export, exporter=exporter, quantize=True)
            path = Path(tmp) / f"{exporter}.onnx"
            started = time.perf_counter()
            export_onnx(model, data, export, path)
            out[f"{exporter}_export_s"] = time.perf_counter() - started
            out[f"{exporter}_parity"] = check_parity(model, path, data.test.x, export)
        _, record = quantization_gate(
            Path(tmp) / "dynamo.onnx", data, export, Path(tmp) / "int8.onnx"
        )
        out["int8"] = record
    return out


def report(name: str, results: dict[str, Any]) -> list[str]:
    t, e = results["training"], results["export"]
    lines = [
        f"{name}: {t['train_rows']} training rows x {t['epochs']} epochs, 1 CPU thread, "
        f"load avg {results['load_average']:.2f}",
        f"  Trainer, training passes  {t['trainer_train_s']:.3f} s  {t['trainer_rows_per_s']:>8.0f} rows/s",
        f"  hand-written loop         {t['hand_loop_s']:.3f} s  {t['hand_loop_rows_per_s']:>8.0f} rows/s",
        f"  ratio (trainer / hand loop training throughput): {t['ratio']:.3f}x (goal >= 0.95x)",
        f"  whole fit incl. a validation pass per epoch: {t['trainer_fit_s']:.3f} s "
        f"({t['ratio_with_validation']:.3f}x)",
    ]
    for exporter in ("dynamo", "torchscript"):
        parity = e[f"{exporter}_parity"]
        lines.append(
            f"  export {exporter:11} {e[f'{exporter}_export_s']:.2f} s, parity max abs diff "
            f"{parity['max_abs_diff']:.3g} on {parity['rows']} rows"
        )
    q = e["int8"]
    lines.append(
        f"  int8: {q['float_bytes']} -> {q['int8_bytes']} bytes, {q['metric']} "
        f"{q['float_metric']:.4f} -> {q['int8_metric']:.4f} ({q['drop_points']:+.2f} points), "
        f"kept={q['kept']}"
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--spec", type=existing_file, default=ROOT / "training" / "specs" / "digits-mlp.yaml"
    )
    parser.add_argument("--epochs", type=count, default=20)
    parser.add_argument("--repeats", type=count, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the trainer's own choice for small models; both paths share it
    spec = load_spec(args.spec)
    kind = CATALOG[spec.recipe.name].kind
    data = prepare(load_raw(spec.dataset, kind), spec, kind)
    results = {
        "spec": spec.name,
        "load_average": os.getloadavg()[0],
        "training": measure_training(spec, data, args.epochs, args.repeats),
        "export": measure_export(spec, data),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for line in report(spec.name, results):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
