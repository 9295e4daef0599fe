"""Training throughput of training.Trainer against a plain hand-written torch loop, plus export.

    python -m bench.train_throughput [--epochs 10] [--repeats 3] [--spec training/specs/digits-mlp.yaml]

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

import torch
from torch import nn

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


def trainer_fit(model: nn.Module, data: PreparedData, spec: JobSpec) -> float:
    trainer = Trainer(spec, data, resolve_device("cpu"), progress=False)
    started = time.perf_counter()
    trainer.fit(model)
    return time.perf_counter() - started


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
    ours, hand = [], []
    for _ in range(repeats):
        ours.append(trainer_fit(copy.deepcopy(initial), data, spec))
        hand.append(hand_written_loop(copy.deepcopy(initial), data, spec, epochs))
    rows = len(data.train.y) * epochs
    return {
        "epochs": epochs,
        "train_rows": len(data.train.y),
        "trainer_s": min(ours),
        "hand_loop_s": min(hand),
        "trainer_rows_per_s": rows / min(ours),
        "hand_loop_rows_per_s": rows / min(hand),
        "ratio": min(hand) / min(ours),
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--spec", type=Path, default=ROOT / "training" / "specs" / "digits-mlp.yaml"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
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
    t, e = results["training"], results["export"]
    print(
        f"{spec.name}: {t['train_rows']} training rows x {t['epochs']} epochs, 1 CPU thread, load avg {results['load_average']:.2f}"
    )
    print(f"  training.Trainer   {t['trainer_s']:.3f} s  {t['trainer_rows_per_s']:>9.0f} rows/s")
    print(
        f"  hand-written loop  {t['hand_loop_s']:.3f} s  {t['hand_loop_rows_per_s']:>9.0f} rows/s"
    )
    print(f"  ratio (trainer / hand loop throughput): {t['ratio']:.3f}x (goal >= 0.95x)")
    for exporter in ("dynamo", "torchscript"):
        parity = e[f"{exporter}_parity"]
        print(
            f"  export {exporter:11} {e[f'{exporter}_export_s']:.2f} s, parity max abs diff {parity['max_abs_diff']:.3g} on {parity['rows']} rows"
        )
    q = e["int8"]
    print(
        f"  int8: {q['float_bytes']} -> {q['int8_bytes']} bytes, {q['metric']} {q['float_metric']:.4f} -> {q['int8_metric']:.4f} ({q['drop_points']:+.2f} points), kept={q['kept']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
