"""Per-request cost of the predict function's metrics, in microseconds (median of 5 runs).

    python -m bench.metrics_cost [--requests 200000]

- EMF (Lambda): `RequestMetrics.record` with its buffer, flushes included (to /dev/null);
- EMF + the local gateway's Prometheus observer (`aiaas serve`), one process;
- the same, Prometheus in multiprocess mode (`aiaas serve --workers N`).
The goal for the Lambda path is under 2 us a request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from bench.args import count

CASES = ("emf", "emf+prometheus", "emf+prometheus multiprocess")

CODE = """
import os, sys, time
from pathlib import Path
from functions.predict.telemetry import RequestMetrics
from infra.local.metrics import GatewayMetrics
metrics = RequestMetrics(out=open(os.devnull, "w"))
if {observe!r}:
    shared = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]) if {multiprocess!r} else None
    observer = GatewayMetrics(shared)
    observer.start()
    metrics.observe(observer)
record = metrics.record
route = "POST /models/{{name}}/predict"
for _ in range(2000):
    record("bench-mlp", "1", route, 200, 4e-5)
start = time.perf_counter_ns()
for i in range({requests}):
    record("bench-mlp", "1", route, 422 if i % 10 == 0 else 200, 4e-5)
print((time.perf_counter_ns() - start) / {requests} / 1e3)
"""


def run(case: str, requests: int) -> float:
    env = dict(os.environ)
    multiprocess = case.endswith("multiprocess")
    with tempfile.TemporaryDirectory() as directory:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
        code = CODE.format(observe="+" in case, multiprocess=multiprocess, requests=requests)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=count, default=200_000)
    parser.add_argument("--runs", type=count, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    for case in CASES:
        values = [run(case, args.requests) for _ in range(args.runs)]
        low, high = min(values), max(values)
        print(
            f"  {case:30} {statistics.median(values):6.2f} us/request "
            f"(range {low:.2f}-{high:.2f}, {args.runs} runs)"
        )
    print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
