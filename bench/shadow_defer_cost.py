"""The predict handler's time with the shadow copy made before it returns (Lambda's form) vs
deferred to the host's `later` (`aiaas serve`'s), vs no shadow; in process, back to back.

    python -m bench.shadow_defer_cost [--runs 3] [--blocks 8]

The MLP pair of bench.shadow_latency, sample 1.0, the line written to /dev/null (`LogSink`).
Blocks of 2,000 calls alternate between the three cases; a deferred call's job runs after its
timing, as `aiaas serve` runs it after the response is handed to granian.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.args import count
from bench.shadow_latency import setup
from functions.predict.service import PredictService
from tests.functions.test_predict_events import http_event

CASES = ("no shadow", "copy before returning", "copy deferred")


def block(service: PredictService, events: list[dict[str, object]], defer: bool) -> list[float]:
    times: list[float] = []
    jobs: list[Callable[[], None]] = []
    later: Callable[[Callable[[], None]], None] | None = jobs.append if defer else None
    for event in events:
        start = time.perf_counter()
        service.handle(event, later)
        times.append(time.perf_counter() - start)
        for job in jobs:
            job()
        jobs.clear()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--blocks", type=count, default=8)
    args = parser.parse_args()
    rows = np.random.default_rng(0).normal(size=(2000, 64))
    path = "/models/m/predict"
    events = [http_event("POST", path, json.dumps({"inputs": [r.tolist()]})) for r in rows]
    with tempfile.TemporaryDirectory() as root:
        off, on = setup(Path(root), 1.0, "log")
        services = dict(zip(CASES, ((off, False), (on, False), (on, True)), strict=True))
        for run in range(args.runs):
            times: dict[str, list[float]] = {case: [] for case in CASES}
            for _ in range(args.blocks):
                for case, (service, defer) in services.items():
                    times[case] += block(service, events, defer)
            print(
                f"run {run + 1}: "
                + " | ".join(
                    f"{case} p50 {np.percentile(t, 50) * 1e6:.1f} us p99 "
                    f"{np.percentile(t, 99) * 1e6:.1f} us"
                    for case, t in times.items()
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
