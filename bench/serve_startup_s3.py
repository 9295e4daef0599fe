"""`aiaas serve` on an S3 store: seconds and CPU to ready, and memory, by number of models.

    python -m bench.serve_startup_s3 [--models 1,5,20] [--runs 3] [--code DIR ...]

moto's S3 server on loopback holds N published models (a 4->3 linear classifier each: the
model's own load is small, so what serve spends on everything else shows). For each N and run,
the real CLI (`aiaas serve`, one worker) starts with an empty model cache; ready is when every
model's `GET /v2/models/{name}/ready` has answered 200 (polled in the warm-up's order). At that
moment: wall seconds from the launch, CPU seconds of the process, its RSS; and its RSS again
once the warm-up has also loaded the health and control functions (`--settle` s later).
`--code DIR ...`: each run starts one server per checkout in turn (e.g. main, then a branch),
alternating which goes first, so the shared machine's drift falls on both alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench.args import checkout, count, counts, wait
from bench.bytecode import compile_checkout

ROOT = Path(__file__).resolve().parents[1]


def publish(bucket: str, count: int, work: Path) -> list[str]:
    from functions.runtime.registry import Registry
    from functions.runtime.s3store import S3Store, make_s3_client
    from tests import onnx_factory

    make_s3_client().create_bucket(Bucket=bucket)
    registry = Registry(S3Store(bucket, "registry"))
    names = [f"m{n:02d}" for n in range(count)]
    for n, name in enumerate(names):
        path = onnx_factory.linear_classifier(work / f"{name}.onnx", seed=n)
        registry.publish(onnx_factory.manifest_for(path, name, "1"), path)
    return names


def _proc(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and RSS MiB of `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss / 2**20


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def one_run(
    code: Path, bucket: str, names: list[str], work: Path, settle_s: float
) -> dict[str, float]:
    from tests.s3server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code), "AIAAS_CACHE_DIR": str(work / f"cache-{port}")}
    # What the `aiaas` console script runs (its launcher, where the checkout has one).
    module = "infra.cli.launch" if (code / "infra/cli/launch.py").exists() else "infra.cli.main"
    command = [sys.executable, "-m", module, "--store", f"s3://{bucket}/registry",
               "serve", "--port", str(port), "--workers", "1"]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = start + 300
        for name in names:
            while not _ready(f"http://127.0.0.1:{port}/v2/models/{name}/ready"):
                if process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"serve of {code} never got {name} ready")
                time.sleep(0.02)
        ready = time.perf_counter() - start
        cpu, rss = _proc(process.pid)
        time.sleep(settle_s)
        _, settled = _proc(process.pid)
        return {"ready_s": ready, "cpu_s": cpu, "rss_mib": rss, "settled_mib": settled}
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", type=counts, default=[1, 5, 20], help="models to publish, a run each"
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--settle", type=wait, default=3.0)
    parser.add_argument("--code", nargs="*", type=checkout, default=[ROOT])
    args = parser.parse_args()
    compile_checkout()  # a fresh process must not time compiling our modules
    from tests.s3server import MotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    with tempfile.TemporaryDirectory(prefix="aiaas-startup-") as tmp:
        work = Path(tmp)
        moto = MotoServer().start(work / "moto.log")
        os.environ["AWS_ENDPOINT_URL"] = moto.endpoint
        try:
            for n_models in args.models:
                bucket = f"startup-{n_models}-{uuid.uuid4().hex[:6]}"
                names = publish(bucket, n_models, work)
                results: dict[Path, list[dict[str, float]]] = {c: [] for c in args.code}
                for run in range(args.runs):
                    order = args.code if run % 2 == 0 else args.code[::-1]
                    for code in order:
                        got = one_run(code, bucket, names, work, args.settle)
                        results[code].append(got)
                        print(f"{n_models:>2} models  {code}  run {run + 1}: " + "  ".join(
                            f"{k} {v:.2f}" for k, v in got.items()), flush=True)  # fmt: skip
                for code, rows in results.items():
                    print(f"== {n_models} models, {code}: " + "  ".join(
                        f"{k} {min(r[k] for r in rows):.2f}-{max(r[k] for r in rows):.2f}"
                        f" (median {statistics.median(r[k] for r in rows):.2f})"
                        for k in rows[0]), flush=True)  # fmt: skip
        finally:
            moto.stop()


if __name__ == "__main__":
    main()
