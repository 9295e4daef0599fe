"""Warm and cold latency of the predict handler, as ratios to raw onnxruntime measured in this run.

    python -m bench.predict_latency [--repeat 20000] [--cold-runs 15] [--split 0.1]

Warm: the in-process handler (a v2 event dict in, a response dict out) for one 1x64 FP32 row,
in the simple JSON form, OIP JSON and OIP binary, against the median of a bare `session.run`,
the cases taking turns in short blocks (`interleaved_medians`).
Cold: a fresh process that imports the handler, loads the model from the local store and
answers one event, against a fresh process that imports numpy + onnxruntime, builds the session
and runs once (the floor). With `--split W`, the alias sends W of its requests to a second
version (the same graph published as version 2): the cost of routing per request, anonymous
(random) and with an `x-aiaas-routing-key` header (hashed). With `--drift`, version 1 carries
a drift baseline, so the handler keeps histograms of every row it answers (issue #18).
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.args import count, share
from bench.bytecode import compile_checkout
from bench.models import publish_mlp
from bench.scratch import scratch_dir

MODEL = "bench-mlp"


def event(method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, object]:
    binary = headers.get("content-type") == "application/octet-stream"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": method, "path": path}, "requestId": "bench"},
        "body": base64.b64encode(body).decode() if binary else body.decode(),
        "isBase64Encoded": binary,
    }


def events(row: np.ndarray) -> dict[str, dict[str, object]]:
    json_headers = {"content-type": "application/json"}
    simple = json.dumps({"inputs": row.tolist()}).encode()
    v2 = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": row.ravel().tolist()}
            ]
        }
    ).encode()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 64],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 256},
                }
            ],
            "outputs": [{"name": "logits", "parameters": {"binary_data": True}}],
        }
    ).encode()
    binary_headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
    keyed = {**json_headers, "x-aiaas-routing-key": "customer-42"}
    return {
        "simple JSON": event("POST", f"/models/{MODEL}/predict", simple, json_headers),
        "simple JSON, routing key": event("POST", f"/models/{MODEL}/predict", simple, keyed),
        "OIP v2 JSON": event("POST", f"/v2/models/{MODEL}/infer", v2, json_headers),
        "OIP v2 binary": event(
            "POST", f"/v2/models/{MODEL}/infer", head + row.astype("<f4").tobytes(), binary_headers
        ),
    }


ROUNDS = 50  # blocks per case, the cases taking turns


def interleaved_medians(cases: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Each case's median over `repeat` timed calls, in µs. The cases take turns in ROUNDS
    blocks, so a slow spell of a shared machine falls on all of them alike rather than on
    whichever ran then. One case at a time, three runs on one noisy host gave the raw run
    9.6-18.3 µs and simple JSON 2.82-4.48x it; in 10 turns still 3.50-3.98x, with two cases
    doing the same work 20% apart; in 50 turns 3.46-3.54x, those two within 1%."""
    for fn in cases.values():
        for _ in range(min(2000, repeat)):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in cases}
    block = max(1, repeat // ROUNDS)
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            times = samples[name]
            for _ in range(block):
                start = time.perf_counter_ns()
                fn()
                times.append(time.perf_counter_ns() - start)
    return {name: statistics.median(times) / 1e3 for name, times in samples.items()}


def warm(model_path: Path, repeat: int) -> dict[str, float]:
    import onnxruntime as ort

    from functions.predict.handler import handler
    from functions.runtime.model import session_options

    row = np.random.default_rng(1).normal(size=(1, 64)).astype(np.float32)
    default = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    options = session_options(model_path.stat().st_size)
    ours = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    cases: dict[str, Callable[[], object]] = {
        "raw session.run (default options)": lambda: default.run(["logits"], {"x": row}),
        "raw session.run (aiaas options)": lambda: ours.run(["logits"], {"x": row}),
    }
    for name, ev in events(row).items():
        assert handler(ev)["statusCode"] == 200, handler(ev)
        cases[f"handler, {name}"] = functools.partial(handler, ev)
    return interleaved_medians(cases, repeat)


FLOOR = """
import numpy as np, onnxruntime as ort
s = ort.InferenceSession({path!r}, providers=["CPUExecutionProvider"])
s.run(None, {{"x": np.zeros((1, 64), np.float32)}})
"""
HANDLER = """
import json
from functions.predict.handler import handler
ev = json.loads({event!r})
assert handler(ev)["statusCode"] == 200
"""


def cold(model_path: Path, runs: int, env: dict[str, str]) -> dict[str, float]:
    ev = json.dumps(events(np.zeros((1, 64), np.float32))["simple JSON"])
    scripts = {
        "floor (numpy + onnxruntime + session + run)": FLOOR.format(path=str(model_path)),
        "predict handler (import, load from store, answer)": HANDLER.format(event=ev),
    }
    results: dict[str, list[float]] = {name: [] for name in scripts}
    for _ in range(runs):
        for name, code in scripts.items():  # interleaved, so drift hits both alike
            start = time.perf_counter()
            subprocess.run(  # its stdout: the handler's EMF lines
                [sys.executable, "-c", code], env=env, check=True, stdout=subprocess.DEVNULL
            )
            results[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in results.items()}


def split_alias(store_dir: Path, model_path: Path, weight: float) -> None:
    """Publish the same graph as version 2 and send `weight` of @production's requests to it."""
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore

    registry = Registry(LocalStore(store_dir))
    registry.publish(replace(registry.manifest(MODEL, "1"), version="2"), model_path)
    registry.set_alias(MODEL, "production", "2", weight=weight)


def drift_baseline(store_dir: Path, model_path: Path) -> None:
    """Store a drift baseline for version 1, fitted on 5000 normal rows (as `aiaas baseline`)."""
    from functions.runtime.drift.baseline import BASELINE_FILE
    from functions.runtime.drift.fit import fit
    from functions.runtime.model import LoadedModel
    from functions.runtime.registry import Registry, version_prefix
    from functions.runtime.store import LocalStore

    registry = Registry(LocalStore(store_dir))
    model = LoadedModel(registry.manifest(MODEL, "1"), model_path)
    base = fit(model, np.random.default_rng(0).normal(size=(5000, 64)))
    key = f"{version_prefix(MODEL, '1')}/{BASELINE_FILE}"
    registry.store.put_bytes(key, base.to_json().encode())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=count, default=20000)
    parser.add_argument("--cold-runs", type=count, default=15)
    parser.add_argument("--split", type=share, help="send this share of requests to version 2")
    parser.add_argument("--drift", action="store_true", help="version 1 has a drift baseline")
    args = parser.parse_args()
    compile_checkout()  # a fresh process must not time compiling our modules
    work = scratch_dir("aiaas-bench-")
    model_path = publish_mlp(work / "store", MODEL)
    if args.split:
        split_alias(work / "store", model_path, args.split)
    if args.drift:
        drift_baseline(work / "store", model_path)
    env = {
        **os.environ,
        "AIAAS_STORE": str(work / "store"),
        "AIAAS_CACHE_DIR": str(work / "cache"),
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AIAAS_DISABLE_METRICS": os.environ.get("AIAAS_DISABLE_METRICS", ""),
    }
    os.environ.update(env)
    cold_ms = cold(model_path, args.cold_runs, env)
    sys.stdout = open(os.devnull, "w")  # the handler's EMF lines  # noqa: SIM115
    warm_us = warm(model_path, args.repeat)
    sys.stdout = sys.__stdout__
    raw = min(
        warm_us["raw session.run (default options)"], warm_us["raw session.run (aiaas options)"]
    )
    split = f", alias split {1 - args.split:g}/{args.split:g}" if args.split else ""
    split += ", drift histograms" if args.drift else ""
    print(
        f"\nwarm, MLP 64-256-256-10, one 1x64 FP32 row{split}, median of {args.repeat} "
        f"in {ROUNDS} turns (ratio vs best raw)"
    )
    for name, value in warm_us.items():
        print(f"  {name:40} {value:9.1f} us   {value / raw:5.2f}x")
    floor = cold_ms["floor (numpy + onnxruntime + session + run)"]
    print(f"\ncold start, fresh process, median of {args.cold_runs} runs (ratio vs floor)")
    for name, value in cold_ms.items():
        print(f"  {name:50} {value:8.1f} ms   {value / floor:5.2f}x")


if __name__ == "__main__":
    main()
