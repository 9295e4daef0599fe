"""Per-request cost of data capture in the in-process predict handler, as ratios to raw
onnxruntime measured in the same process (3+ runs, each a fresh process).

    python -m bench.capture_cost [--repeat 20000] [--runs 3]

Cases, interleaved in blocks so drift on a shared machine hits them alike: no tap (the
capture call replaced by a no-op: the handler as it was before capture), capture off (the
default), on at 5% and at 100% (no deny-list: the request is embedded as sent; and with a
one-field deny-list: parsed, redacted, re-serialised), each on its own directory store. The
median shows the per-request path; the mean includes the objects written (one a second at
most, or per 1 MiB of lines) apart: the time spent in those writes divided by the requests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.args import count

BLOCK = 1000  # calls of a case timed in a row, cases interleaved block by block

CODE = """
import io, json, os, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import onnxruntime as ort
from bench.models import publish_mlp
from bench.predict_latency import events
from functions.predict.service import service_from_env
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore

CASES = {{"no tap": None, "off": None, "5%": (0.05, None), "100%": (1.0, None), "100%, deny 1 field": (1.0, ["email"])}}
work = Path(tempfile.mkdtemp(prefix="aiaas-capture-bench-"))
row = np.random.default_rng(1).normal(size=(1, 64)).astype(np.float32)
event = events(row)["simple JSON"]
services = {{}}
writes = {{}}  # ns spent writing capture objects, per case
for i, (case, setting) in enumerate(CASES.items()):
    store = work / f"store{{i}}"
    model_path = publish_mlp(store, "bench-mlp")
    if setting is not None:
        set_capture(Registry(LocalStore(store)), "bench-mlp", sample=setting[0], deny=setting[1], actor="bench")
    env = {{"AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(work / "cache"),
           "AIAAS_MODEL": "bench-mlp", "AIAAS_MODEL_SELECTOR": "@production"}}
    service = service_from_env(env)
    service.warm()
    services[case] = service.handle
    if case == "no tap":  # the handler as before capture existed: offer() does nothing
        service.capture.offer = lambda *args: None
    store_obj = service.capture.buffer.store
    put = store_obj.put_bytes
    def timed(key, data, _put=put, _case=case, **kw):
        start = time.perf_counter_ns()
        _put(key, data, **kw)
        writes[_case] = writes.get(_case, 0) + time.perf_counter_ns() - start
    store_obj.put_bytes = timed
session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
calls = {{"raw session.run": lambda: session.run(["logits"], {{"x": row}})}}
calls.update({{case: (lambda h=handle: h(event)) for case, handle in services.items()}})
sys.stdout = open(os.devnull, "w")  # the handlers' EMF lines
samples = {{name: [] for name in calls}}
for name, call in calls.items():
    for _ in range(2000):
        call()
for block in range({repeat} // {block}):
    for name, call in calls.items():
        times = samples[name]
        for _ in range({block}):
            start = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - start)
writes = {{n: w / len(samples[n]) / 1e3 for n, w in writes.items()}}  # before the final flush
sys.stdout = sys.__stdout__
print(json.dumps({{n: [statistics.median(v) / 1e3, writes.get(n, 0.0)] for n, v in samples.items()}}))
"""


def run(repeat: int) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(repeat=repeat, block=BLOCK)],
        capture_output=True,
        text=True,
        env={"POWERTOOLS_LOG_LEVEL": "WARNING", **os.environ},
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=20000, help="calls a case a run (>= 1000)")
    parser.add_argument("--runs", type=count, default=3)
    args = parser.parse_args()
    if args.repeat < BLOCK:
        parser.error(f"--repeat must be at least {BLOCK}: calls are timed in blocks of {BLOCK}")
    started = time.perf_counter()
    results = [run(args.repeat) for _ in range(args.runs)]
    print(f"MLP 64-256-256-10, one 1x64 FP32 row, simple JSON, {args.repeat} calls a case a run")
    print(f"  {'case':20} {'median us':>16} {'x raw':>12} {'x off':>12} {'writes us/request':>18}")
    for case in results[0]:
        med = [r[case][0] for r in results]
        ratio = [r[case][0] / r["raw session.run"][0] for r in results]
        off = [r[case][0] / r["off"][0] for r in results]
        put = [r[case][1] for r in results]
        print(
            f"  {case:20} {min(med):7.1f}-{max(med):7.1f} {min(ratio):5.2f}-{max(ratio):5.2f}"
            f" {min(off):5.3f}-{max(off):5.3f} {min(put):8.2f}-{max(put):8.2f}"
        )
    print(f"  ({args.runs} runs, {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
