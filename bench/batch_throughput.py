"""Batch scoring throughput and peak memory through the batch handler, against raw onnxruntime.

    python -m bench.batch_throughput [--rows 1000000] [--rss-rows 4000000] [--formats csv,npy]
        [--progress]

Writes N rows x 64 FP32 as CSV and NPY into a local store, then, each in a fresh process,
fires the S3 -> SQS event at the batch handler (`dispatch`, the same code Lambda runs) and
reports rows/s and the process's peak RSS. The baseline is a bare onnxruntime session with the
runtime's own session options, fed the same rows in batches of the same size, in this run.
With --rss-rows the CSV run is repeated at that size: peak RSS must not grow with the file.
Each line also gives rows per CPU-second against the bare session's: when other work keeps
every core busy, the wall-clock ratio tends to that one, since overlap then buys nothing.
Text inputs go to worker processes from 3 CPUs up (AIAAS_BATCH_WORKERS=N forces N); their CPU
time counts, and their peak RSS is added as (workers x the largest worker's peak).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.args import count, names, whole
from bench.models import publish_mlp

MODEL = "bench-mlp"
FEATURES = 64
GOALS = {"csv": 0.3, "npy": 0.7}
RSS_GROWTH_GOAL = 1.2


def write_inputs(store_dir: Path, rows: int, formats: list[str], seed: int = 0) -> dict[str, str]:
    """Input files of `rows` x 64 float32 under batch/bench-mlp/input/, written in blocks."""
    from numpy.lib.format import open_memmap

    folder = store_dir / "batch" / MODEL / "input"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keys = {}
    block = 100_000
    if "csv" in formats:
        path = folder / f"rows-{rows}.csv"
        with path.open("w") as out:
            out.write(",".join(f"x_{i}" for i in range(FEATURES)) + "\n")
            for start in range(0, rows, block):
                x = rng.normal(size=(min(block, rows - start), FEATURES)).astype(np.float32)
                np.savetxt(out, x, fmt="%.7g", delimiter=",")
        keys["csv"] = f"batch/{MODEL}/input/{path.name}"
    if "npy" in formats:
        path = folder / f"rows-{rows}.npy"
        array = open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, FEATURES))
        for start in range(0, rows, block):
            stop = min(start + block, rows)
            array[start:stop] = rng.normal(size=(stop - start, FEATURES))
        array.flush()
        del array
        keys["npy"] = f"batch/{MODEL}/input/{path.name}"
    return keys


def raw_onnxruntime(model: Path, rows: int, batch: int) -> tuple[float, float]:
    """(rows per second, rows per CPU-second) of a bare session (the runtime's options) over
    `rows` rows in `batch`-row calls."""
    import onnxruntime as ort

    from functions.runtime.model import session_options

    session = ort.InferenceSession(
        str(model),
        sess_options=session_options(model.stat().st_size),
        providers=["CPUExecutionProvider"],
    )
    x = np.random.default_rng(1).standard_normal((16_384, FEATURES), dtype=np.float32)
    session.run(None, {"x": x[:batch]})
    began, cpu, done = time.perf_counter(), time.process_time(), 0
    while done < rows:
        start = done % len(x)
        take = min(batch, rows - done, len(x) - start)
        session.run(None, {"x": x[start : start + take]})
        done += take
    return rows / (time.perf_counter() - began), rows / (time.process_time() - cpu)


def child(store_dir: str, key: str, chunk_rows: int) -> dict[str, Any]:
    """In a fresh process: one SQS event through the handler; rows/s and peak RSS."""
    from functions.batch.events import s3_notification, sqs_event, store_location
    from functions.batch.handler import dispatch
    from functions.batch.service import BatchService
    from functions.runtime.batch import parallel
    from functions.runtime.batch.settings import BatchSettings
    from functions.runtime.pool import ModelPool
    from functions.runtime.registry import Registry
    from functions.runtime.store import LocalStore

    store = LocalStore(store_dir)
    settings = BatchSettings.from_env().with_chunk_rows(chunk_rows)
    from infra.cli.row_progress import Progress

    # --progress: rows counted as `aiaas batch` counts them (per chunk; the lines are dropped)
    shown = Progress(MODEL, verb="scored", show=bool(os.environ.get("AIAAS_BENCH_PROGRESS")))
    progress = shown.add if shown.show else None
    batch = BatchService(store, ModelPool(Registry(store)), settings, progress)
    loaded = batch.pool.load(batch.pool.registry.resolve(MODEL))  # warm container: not timed
    raw_rows = 262_144  # ~0.5-1 s of onnxruntime here
    raw_before, raw_cpu_before = raw_onnxruntime(loaded.path, raw_rows, chunk_rows)
    info = store.head(key)
    before = _status_kib("VmRSS") * 1024
    event = sqs_event(
        [json.dumps(s3_notification(store_location(store)[0], key, info.etag, info.size))]
    )
    began, cpu = time.perf_counter(), time.process_time()
    response = dispatch(batch, event)
    wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    # Worker processes (AIAAS_BATCH_WORKERS, or 3+ CPUs) count too: stop them, then add the
    # CPU they used and, as an upper bound, their number times the largest one's peak RSS.
    workers = len(parallel._pool.workers) if parallel._pool is not None else 0
    parallel._stop_pool()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += children.ru_utime + children.ru_stime
    # The baseline right before and after the run, in this process: the machine is shared, so
    # a figure taken minutes apart would compare different loads.
    raw_after, raw_cpu_after = raw_onnxruntime(loaded.path, raw_rows, chunk_rows)
    raw, raw_cpu = (raw_before + raw_after) / 2, (raw_cpu_before + raw_cpu_after) / 2
    summary_key = key.replace("/input/", "/output/", 1) + ".summary.json"
    summary = json.loads(store.get_bytes(summary_key))
    assert response == {"batchItemFailures": []} and summary["status"] == "succeeded", summary
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent process.
    peak = _status_kib("VmHWM") * 1024 + workers * children.ru_maxrss * 1024
    return {
        "rows": summary["rows"],
        "wall_s": wall,
        "rows_per_s": summary["rows"] / wall,
        "raw_ort_rows_per_s": raw,
        # CPU-seconds of this process (all threads): on a machine whose cores are all busy the
        # wall-clock ratio tends to this one, whatever overlap the pipeline could get.
        "cpu_s": cpu,
        "rows_per_cpu_s": summary["rows"] / cpu,
        "raw_ort_rows_per_cpu_s": raw_cpu,
        "peak_rss": peak,
        "rss_before_event": before,
        "workers": workers,
        "timings": summary["timings"],
        "progress_rows": shown.done if progress else None,
    }


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def measure(store_dir: Path, key: str, chunk_rows: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench.batch_throughput",
        "--child",
        str(store_dir),
        key,
        str(chunk_rows),
    ]
    env = {**os.environ, "AIAAS_CACHE_DIR": str(store_dir.parent / "cache")}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=count, default=1_000_000)
    parser.add_argument(
        "--rss-rows",
        type=whole(0, 10**9),
        default=0,
        help="repeat CSV at this size for the RSS check",
    )
    parser.add_argument("--formats", type=names(tuple(GOALS)), default=list(GOALS))
    parser.add_argument("--chunk-rows", type=count, default=4096)
    parser.add_argument("--workdir", type=Path, help="keep inputs here (default: a temp dir)")
    parser.add_argument(
        "--progress", action="store_true", help="count rows as `aiaas batch` does (its cost)"
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.progress:
        os.environ["AIAAS_BENCH_PROGRESS"] = "1"  # the children read it
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], int(args.child[2]))))
        return 0
    formats = args.formats
    with tempfile.TemporaryDirectory(prefix="aiaas-bench-batch-") as tmp:
        work = args.workdir or Path(tmp)
        store_dir = work / "store"
        model = publish_mlp(store_dir, MODEL)
        keys = write_inputs(store_dir, args.rows, formats)
        report: dict[str, Any] = {"rows": args.rows, "chunk_rows": args.chunk_rows}
        print(f"{model.name}, {args.rows:,} rows x {FEATURES} FP32, batch {args.chunk_rows}")
        ok = True
        for fmt, key in keys.items():
            result = measure(store_dir, key, args.chunk_rows)
            ratio = result["rows_per_s"] / result["raw_ort_rows_per_s"]
            ok &= ratio >= GOALS[fmt]
            cpu_ratio = result["rows_per_cpu_s"] / result["raw_ort_rows_per_cpu_s"]
            report[fmt] = {**result, "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3)}
            print(
                f"{fmt:4} {result['rows_per_s']:>10,.0f} rows/s  {ratio:5.2f}x raw onnxruntime "
                f"({result['raw_ort_rows_per_s']:,.0f} rows/s, goal >= {GOALS[fmt]})  "
                f"per CPU-second {cpu_ratio:.2f}x raw, {result['cpu_s'] / result['wall_s']:.2f} cores busy"
                f" ({result['workers'] or 'no'} worker processes)  "
                f"peak RSS {result['peak_rss'] / 2**20:,.0f} MiB (loaded: {result['rss_before_event'] / 2**20:,.0f})  "
                f"{result['timings']}"
            )
        if args.rss_rows and "csv" in keys:
            big = write_inputs(store_dir, args.rss_rows, ["csv"], seed=1)["csv"]
            result = measure(store_dir, big, args.chunk_rows)
            growth = result["peak_rss"] / report["csv"]["peak_rss"]
            ok &= growth <= RSS_GROWTH_GOAL
            report["csv_rss_check"] = {**result, "growth": round(growth, 3)}
            print(
                f"csv at {args.rss_rows:,} rows: {result['rows_per_s']:,.0f} rows/s, peak RSS "
                f"{result['peak_rss'] / 2**20:,.0f} MiB = {growth:.2f}x the {args.rows:,}-row run (goal <= {RSS_GROWTH_GOAL})"
            )
        print(json.dumps(report))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
