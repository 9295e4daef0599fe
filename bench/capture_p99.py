"""Where data capture's cost lands: per-request time of the in-process predict handler with
capture off, at 5% and at 100%, requests arriving at `--rate` a second on a simulated clock.

    python -m bench.capture_p99 [--rate 100] [--requests 6000] [--runs 3]

Capture writes its held lines on the request that ends a second of them (buffer.py), so at
any sample that captures a line a second, one request a second pays an object write (an
fsync'd file on a directory store here, an S3 PUT in Lambda) and the rest pay only the line:
below ~100 requests a second per container that request is within the slowest 1%. The clock
capture reads is simulated (each request 1/rate s after the one before), so the machine's
load does not set how many requests write; the time of each request is real. Cases are
interleaved request by request, each on its own directory store. Reported per run: p50, p99,
p99.9 per case, and the writes' count and median time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.args import count, rate
from bench.models import publish_mlp
from bench.predict_latency import events
from functions.predict.capture import CaptureTap
from functions.predict.service import service_from_env
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.capture.setting import set_capture
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore

CASES = {"off": 0.0, "5%": 0.05, "100%": 1.0}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now


def one_run(rate: float, requests: int) -> list[str]:
    work = Path(tempfile.mkdtemp(prefix="aiaas-capture-p99-"))
    clock, handlers = Clock(), {}
    writes: dict[str, list[float]] = {case: [] for case in CASES}
    for i, (case, sample) in enumerate(CASES.items()):
        store = work / f"store{i}"
        publish_mlp(store, "bench-mlp")
        if sample:
            set_capture(Registry(LocalStore(store)), "bench-mlp", sample=sample, actor="bench")
        env = {"AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(work / "cache"),
               "AIAAS_MODEL": "bench-mlp", "AIAAS_MODEL_SELECTOR": "@production"}  # fmt: skip
        service = service_from_env(env)
        tap = service.capture
        buffer = CaptureBuffer(tap.buffer.store, clock=clock.monotonic, wall=clock.wall)
        buffer.report = tap.buffer.report
        service.capture = CaptureTap(
            tap.served, buffer, clock=clock.monotonic, wall=clock.wall, report=tap.buffer.report
        )
        service.warm()
        put = buffer.store.put_bytes

        def timed(
            key: str, data: bytes, _put: Any = put, _w: list[float] = writes[case], **kw: Any
        ) -> None:
            start = time.perf_counter()
            _put(key, data, **kw)
            _w.append(time.perf_counter() - start)

        buffer.store.put_bytes = timed  # type: ignore[method-assign]
        handlers[case] = service.handle
    event = events(np.random.default_rng(1).normal(size=(1, 64)).astype(np.float32))["simple JSON"]
    times: dict[str, list[float]] = {case: [] for case in CASES}
    for i in range(requests + 500):
        clock.now += 1 / rate
        for case, handle in handlers.items():
            start = time.perf_counter()
            assert handle(event)["statusCode"] == 200
            if i >= 500:  # warm-up
                times[case].append(time.perf_counter() - start)
    lines = []
    for case, values in times.items():
        p50, p99, p999 = np.percentile(np.array(values) * 1e3, [50, 99, 99.9])
        w = writes[case]
        median = statistics.median(w) * 1e3 if w else 0.0
        lines.append(
            f"  {case:5} p50 {p50:.3f} ms  p99 {p99:.3f} ms  p99.9 {p999:.3f} ms  "
            f"writes {len(w)} (median {median:.2f} ms)"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=rate, default=100, help="simulated requests a second")
    parser.add_argument("--requests", type=count, default=6000)
    parser.add_argument("--runs", type=count, default=3)
    args = parser.parse_args()
    for run in range(args.runs):
        print(f"run {run + 1} ({args.rate:g} requests/s simulated, load {os.getloadavg()[0]:.1f})")
        out, sys.stdout = sys.stdout, open(os.devnull, "w")  # noqa: SIM115 - the EMF lines
        try:
            lines = one_run(args.rate, args.requests)
        finally:
            sys.stdout = out
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
