"""What callers of a real `aiaas serve` see with data capture on vs off: p50/p99 over HTTP.

    python -m bench.capture_http [--sample 1.0] [--rate 2000] [--runs 3] [--blocks 4]
                                 [--block-s 3] [--code DIR]

The MLP of bench.shadow_latency (64->256->256->10), one row of simple JSON a request, published
in two stores alike; capture is a model's setting, so one store has it at `--sample` and the
other off. Two `aiaas serve` processes (the real CLI, one worker each, drift on in both) take
turns in blocks, off first in one pair and on first in the next, paced from one connection as
bench.shadow_http does (latency from each request's scheduled time, no coordinated omission).
Reported per run: both sides' p50 and p99 over all requests, their ratio, and the ratio of the
blocks' median p99s (one stall of the shared machine sets a pooled p99, not that median).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.models import mlp_onnx, publish_classifier
from bench.shadow_http import ROOT, paced, start
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore


def one_run(
    ports: dict[str, int], bodies: list[bytes], args: argparse.Namespace
) -> dict[str, float]:
    p99s: dict[str, list[float]] = {case: [] for case in ports}
    times: dict[str, list[float]] = {case: [] for case in ports}
    for pair in range(args.blocks):
        order = list(ports.items()) if pair % 2 == 0 else list(reversed(ports.items()))
        for case, port in order:
            block = paced(port, bodies, args.rate, args.block_s)
            times[case] += block
            p99s[case].append(float(np.percentile(block, 99)) * 1e3)
    f: dict[str, float] = {}
    for case in ports:
        f[f"{case}_p50"], f[f"{case}_p99"] = np.percentile(np.array(times[case]) * 1e3, [50, 99])
    f["ratio"] = f["on_p99"] / f["off_p99"]
    f["block_ratio"] = statistics.median(p99s["on"]) / statistics.median(p99s["off"])
    return f


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sample", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=2000, help="requests/s from one connection")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=4, help="off/on pairs a run")
    parser.add_argument("--block-s", type=int, default=3)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout the servers run")
    args = parser.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # the client on one core
    rng = np.random.default_rng(0)
    bodies = [json.dumps({"inputs": [r.tolist()]}).encode() for r in rng.normal(size=(500, 64))]
    with tempfile.TemporaryDirectory() as root:
        stores = {case: Path(root) / case / "store" for case in ("off", "on")}
        model = mlp_onnx(Path(root) / "m.onnx")
        for store in stores.values():
            publish_classifier(store, "m", model)
        set_capture(Registry(LocalStore(stores["on"])), "m", sample=args.sample, actor="bench")
        servers = {case: start(store, "@production", args.code) for case, store in stores.items()}
        ports = {case: port for case, (_, port) in servers.items()}
        try:
            for port in ports.values():  # warm: model loaded, capture setting read
                paced(port, bodies, 1000, 1)
            for run in range(args.runs):
                f = one_run(ports, bodies, args)
                lines = sum(
                    len(LocalStore(stores["on"]).get_bytes(k).splitlines())
                    for k in LocalStore(stores["on"]).list_keys("capture/m")
                )
                print(
                    f"run {run + 1}: off p50 {f['off_p50']:.3f} ms p99 {f['off_p99']:.3f} ms | "
                    f"on p50 {f['on_p50']:.3f} ms p99 {f['on_p99']:.3f} ms | "
                    f"p99 on/off {f['ratio']:.3f} (blocks' median {f['block_ratio']:.3f}) | "
                    f"lines captured so far {lines}",
                    flush=True,
                )
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(30)


if __name__ == "__main__":
    main()
