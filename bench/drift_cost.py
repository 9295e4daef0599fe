"""Per-request cost of the drift histograms, in microseconds (median and range of 3+ runs).

    python -m bench.drift_cost [--requests 100000] [--runs 3]

`DriftMonitor.record` for one-row requests of 64 float32 features (the issue's bench: <= 3 us)
and for 16-row requests, a classifier's 10 scores each: the append per request plus the binning
of every row in one pass per `FOLD_ROWS` rows, and the flushes to a directory store (one every
`--interval` seconds; default 1 s, 60x the function's default) all included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bench.args import above_zero, count, whole

CODE = """
import tempfile, time
from pathlib import Path
import numpy as np
from functions.runtime.drift import baseline as b
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.manifest import ModelManifest, Postprocessing, TensorSpec, ModelFile
from functions.runtime.store import LocalStore

class Model:  # the monitor reads only the manifest, ref and tokenizer of a loaded model
    text = None
    ref = "bench:1"
    manifest = ModelManifest(
        name="bench", version="1", task="classification",
        inputs=(TensorSpec("x", "float32", (-1, 64)),),
        outputs=(TensorSpec("logits", "float32", (-1, 10)),),
        file=ModelFile(sha256="0" * 64, size=1, opset=17, producer="bench"),
        labels=tuple(str(i) for i in range(10)),
        postprocessing=Postprocessing(scores_output="logits"),
    )

rng = np.random.default_rng(0)
train = rng.normal(size=(5000, 64)).astype(np.float32)
base = b.build(train, tuple(f"x{{i}}" for i in range(64)),
               b.label_shares(rng.integers(0, 10, 5000), Model.manifest.labels))
store = LocalStore(Path(tempfile.mkdtemp()) / "store")
store.put_bytes("models/bench/versions/1/" + BASELINE_FILE, base.to_json().encode())
monitor = DriftMonitor(store, interval={interval})
requests = [({{"x": rng.normal(size=({rows}, 64)).astype(np.float32)}},
             {{"logits": rng.normal(size=({rows}, 10)).astype(np.float32)}}) for _ in range(512)]
model = Model()
record = monitor.record
for inputs, outputs in requests:
    record(model, inputs, outputs)
start = time.perf_counter_ns()
for i in range({requests}):
    inputs, outputs = requests[i & 511]
    record(model, inputs, outputs)
monitor.flush()
print((time.perf_counter_ns() - start) / {requests} / 1e3)
"""


def run(rows: int, requests: int, interval: float) -> float:
    code = CODE.format(rows=rows, requests=requests, interval=interval)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests", type=whole(16, 10**9), default=100_000, help="of 16 rows at most"
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--interval", type=above_zero(86400), default=1.0)
    args = parser.parse_args()
    started = time.perf_counter()
    for rows in (1, 16):
        values = [run(rows, args.requests // rows, args.interval) for _ in range(args.runs)]
        print(
            f"  {rows:2} row(s) x 64 features: {statistics.median(values):6.2f} us/request "
            f"(range {min(values):.2f}-{max(values):.2f}, {args.runs} runs)"
        )
    print(f"  ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
