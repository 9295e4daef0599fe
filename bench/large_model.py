"""Big models from S3: publish time, time to first answer and peak memory, against boto3 peers.

    python -m bench.large_model [--runs 3] [--rate-mbps 90] [--size-scale 1.0] [--json out.json]
                                [--models single-1gb,external-2.5gb] [--publish-only]

Two synthetic transformer-style models (bench/synthetic_transformer.py): ~1 GB in one file and
~2.5 GB with external data (--size-scale shrinks both, for a quick check). They are served by
moto's S3 server on loopback behind a proxy that caps each connection at --rate-mbps (S3 gives
~90 MB/s per connection). Each run, per model, in one go:
  - publish: aiaas's `Registry.publish` (hash, parallel multipart, manifest last) against
    boto3's `upload_file` of the same files (default TransferConfig);
  - time to first answer in a fresh process (download, verify, load, answer) and its peak RSS:
    aiaas (ModelPool, as the predict function loads), boto3's parallel `download_fileobj`
    into memory + onnxruntime from memory (the floor), and one `get_object().read()` stream
    per file + onnxruntime from memory (the single-stream path).
Models live in a temp dir, deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.args import above_zero, count, rate
from bench.bytecode import compile_checkout
from bench.synthetic_transformer import SyntheticShape, write_model
from bench.throttle_proxy import ThrottleProxy

REPO = Path(__file__).resolve().parents[1]
MODELS = {"single-1gb": (1.0e9, False), "external-2.5gb": (2.5e9, True)}
BUCKET = "aiaas-large-model-bench"

# Run in a fresh interpreter: imports, download, verify, load and one answer all count.
FIRST_ANSWER = r"""
import json, sys, time
began = time.perf_counter()
import numpy as np
import onnxruntime as ort
path, model, version, cache, rows = sys.argv[1:6]
tokens = np.random.default_rng(1).integers(0, 8192, size=(2, 16), dtype=np.int64)

def from_memory(blobs):
    options = ort.SessionOptions()
    data = {k: v for k, v in blobs.items() if k != "model.onnx"}
    if data:
        options.add_external_initializers_from_files_in_memory(
            list(data), list(data.values()), [len(v) for v in data.values()])
    return ort.InferenceSession(blobs["model.onnx"], options, providers=["CPUExecutionProvider"])

if path == "aiaas":
    from pathlib import Path
    from functions.runtime.pool import ModelPool
    from functions.runtime.registry import Registry
    from functions.runtime.settings import RuntimeSettings
    settings = RuntimeSettings.from_env()
    pool = ModelPool(Registry(), settings=settings)
    out = pool.load_version(model, version).predict({"tokens": tokens})["logits"]
else:
    import io
    import boto3
    client = boto3.client("s3")
    prefix = f"boto/{model}/"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=rows, Prefix=prefix)["Contents"]]
    blobs = {}
    for key in keys:
        if path == "boto3-parallel":
            buffer = io.BytesIO()
            client.download_fileobj(rows, key, buffer)
            blobs[key[len(prefix):]] = buffer.getbuffer()
        else:
            blobs[key[len(prefix):]] = client.get_object(Bucket=rows, Key=key)["Body"].read()
    blobs["model.onnx"] = bytes(blobs["model.onnx"])
    out = from_memory(blobs).run(None, {"tokens": tokens})[0]
print(json.dumps({
    "seconds": time.perf_counter() - began,
    # VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across fork + exec.
    "peak_rss_mb": next(int(line.split()[1]) for line in open("/proc/self/status")
                        if line.startswith("VmHWM:")) / 1024,
    "answer": np.asarray(out).round(3).tolist(),
}))
"""


def build_models(root: Path, scale: float, names: list[str]) -> dict[str, list[Path]]:
    built = {}
    for name in names:
        size, external = MODELS[name]
        shape = SyntheticShape.of_bytes(int(size * scale), width=1024 if scale >= 0.1 else 64)
        built[name] = write_model(root / name / "model.onnx", shape, external=external)
    return built


def publish_times(
    files: dict[str, list[Path]], env: dict[str, str], run: int, moto_pid: int
) -> dict[str, Any]:
    """aiaas publish and boto3 upload_file of each model's files: seconds, and the CPU seconds
    this process (client and proxy) and moto spent, which say whether the cores were the limit."""
    import boto3

    from functions.runtime.registry import Registry
    from functions.runtime.store import open_store
    from tests import onnx_factory

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    registry = Registry(open_store(env["AIAAS_STORE"]))
    found: dict[str, Any] = {}
    for name, paths in files.items():
        # What `aiaas publish` does first (onnxruntime load, sha256): timed apart, as the
        # issue's goal compares the upload itself with upload_file.
        began = time.perf_counter()
        manifest = onnx_factory.manifest_for(paths[0], name, str(run))
        introspect = time.perf_counter() - began
        if run % 2:  # taking turns to go first: neither always meets a busier moto
            aiaas = _timed(moto_pid, registry.publish, manifest, paths[0])
            boto = _timed(moto_pid, _upload_files, client, name, paths)
        else:
            boto = _timed(moto_pid, _upload_files, client, name, paths)
            aiaas = _timed(moto_pid, registry.publish, manifest, paths[0])
        found[name] = {
            "aiaas_s": aiaas[0],
            "upload_file_s": boto[0],
            "ratio": boto[0] / aiaas[0],
            "aiaas_cpu_s": aiaas[1],
            "upload_file_cpu_s": boto[1],
            "aiaas_moto_cpu_s": aiaas[2],
            "upload_file_moto_cpu_s": boto[2],
            "introspect_s": introspect,
        }
    return found


def _upload_files(client: Any, name: str, paths: list[Path]) -> None:
    for path in paths:
        client.upload_file(str(path), BUCKET, f"boto/{name}/{path.name}")


def _timed(moto_pid: int, step: Callable[..., object], *args: Any) -> tuple[float, float, float]:
    """Wall seconds, this process's CPU seconds and moto's CPU seconds that `step` took."""
    began, cpu, moto = time.perf_counter(), time.process_time(), _cpu_of(moto_pid)
    step(*args)
    return time.perf_counter() - began, time.process_time() - cpu, _cpu_of(moto_pid) - moto


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def first_answer(path: str, model: str, version: str, env: dict[str, str]) -> dict[str, Any]:
    cache = tempfile.mkdtemp(prefix="aiaas-bench-cache-")
    try:
        out = subprocess.run(
            [sys.executable, "-c", FIRST_ANSWER, path, model, version, cache, BUCKET],
            capture_output=True,
            text=True,
            env=env | {"AIAAS_CACHE_DIR": cache},
            cwd=REPO,
            timeout=900,
            check=False,
        )
        if out.returncode:
            raise RuntimeError(f"{path} {model}: {out.stderr[-2000:]}")
        return json.loads(out.stdout.splitlines()[-1])  # type: ignore[no-any-return]
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def one_run(
    files: dict[str, list[Path]],
    env: dict[str, str],
    run: int,
    moto_pid: int,
    publish_only: bool = False,
) -> dict[str, Any]:
    # The machine is shared: the load average at the start and end says how busy it was.
    result: dict[str, Any] = {
        "load_before": os.getloadavg(),
        "publish": publish_times(files, env, run, moto_pid),
    }
    if publish_only:  # the version just published is not read: moto keeps no GBs of them
        _delete_prefix(env, "registry/")
        result["load_after"] = os.getloadavg()
        return result
    for model, paths in files.items():
        answers = {p: first_answer(p, model, str(run), env) for p in PATHS}
        floor, single = answers["boto3-parallel"]["seconds"], answers["single-stream"]["seconds"]
        aiaas = answers["aiaas"]
        result[model] = {
            **answers,
            "bytes": sum(p.stat().st_size for p in paths),
            "aiaas_vs_single_stream": aiaas["seconds"] / single,
            "aiaas_vs_floor": aiaas["seconds"] / floor,
            "peak_rss_vs_bytes": aiaas["peak_rss_mb"]
            * 2**20
            / sum(p.stat().st_size for p in paths),
            "same_answer": len({json.dumps(a["answer"]) for a in answers.values()}) == 1,
        }
    result["load_after"] = os.getloadavg()
    return result


PATHS = ("aiaas", "boto3-parallel", "single-stream")


def _delete_prefix(env: dict[str, str], prefix: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.large_model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--rate-mbps", type=rate, default=90.0, help="cap per connection, MB/s")
    parser.add_argument(
        "--size-scale", type=above_zero(10.0), default=1.0, help="model sizes x this"
    )
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}"
    )
    parser.add_argument(
        "--publish-only",
        action="store_true",
        help="time publish against upload_file only (more runs in the same time)",
    )
    args = parser.parse_args(argv)
    compile_checkout()  # a fresh process must not time compiling our modules
    names = args.models.split(",")
    if not set(names) <= set(MODELS):
        parser.error(f"--models: choose from {', '.join(MODELS)}")
    from tests.s3server import MotoServer

    root = Path(tempfile.mkdtemp(prefix="aiaas-large-model-"))
    # moto, but ranged GETs read only their range (bench/moto_ranges.py says why).
    moto = MotoServer(module="bench.moto_ranges").start(root / "moto.log")
    proxy = ThrottleProxy(moto.port, args.rate_mbps * 1e6).start()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "AWS_ENDPOINT_URL": proxy.endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIAAS_STORE": f"s3://{BUCKET}/registry",
        "AIAAS_MODEL_LOAD": "auto",
    }
    os.environ.update(
        {
            k: env[k]
            for k in (
                "AWS_ENDPOINT_URL",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION",
            )
        }
    )
    try:
        import boto3

        boto3.client("s3", endpoint_url=proxy.endpoint).create_bucket(Bucket=BUCKET)
        files = build_models(root / "models", args.size_scale, names)
        assert moto.process is not None
        runs = [
            one_run(files, env, run, moto.process.pid, args.publish_only)
            for run in range(1, args.runs + 1)
        ]
    finally:
        proxy.stop()
        moto.stop()
        shutil.rmtree(root, ignore_errors=True)
    report = {"rate_mbps": args.rate_mbps, "size_scale": args.size_scale, "runs": runs}
    print(publish_summary(runs, names) if args.publish_only else summary(runs, names))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def summary(runs: list[dict[str, Any]], names: list[str]) -> str:
    """Ranges over the runs of each figure the issue sets a goal for."""
    lines = [
        "load average (1 min) at run start / end: "
        + ", ".join(f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f}" for r in runs)
    ]

    def span(values: list[float], fmt: str = "{:.2f}") -> str:
        return f"{fmt.format(min(values))}-{fmt.format(max(values))}"

    for model in names:
        rows = [run[model] for run in runs]
        pub = [run["publish"][model] for run in runs]
        lines.append(
            f"{model} ({rows[0]['bytes'] / 1e9:.2f} GB): first answer aiaas "
            f"{span([r['aiaas']['seconds'] for r in rows])} s, boto3 parallel "
            f"{span([r['boto3-parallel']['seconds'] for r in rows])} s, single stream "
            f"{span([r['single-stream']['seconds'] for r in rows])} s; aiaas/single "
            f"{span([r['aiaas_vs_single_stream'] for r in rows])} (goal <= 0.5), aiaas/floor "
            f"{span([r['aiaas_vs_floor'] for r in rows])} (goal <= 1.2); peak RSS aiaas "
            f"{span([r['aiaas']['peak_rss_mb'] for r in rows], '{:.0f}')} MB = "
            f"{span([r['peak_rss_vs_bytes'] for r in rows])}x bytes (goal <= 1.5), boto3 "
            f"{span([r['boto3-parallel']['peak_rss_mb'] for r in rows], '{:.0f}')} MB, single "
            f"{span([r['single-stream']['peak_rss_mb'] for r in rows], '{:.0f}')} MB; publish "
            f"aiaas {span([p['aiaas_s'] for p in pub])} s vs upload_file "
            f"{span([p['upload_file_s'] for p in pub])} s = "
            f"{span([p['ratio'] for p in pub])}x (goal >= 1), CPU s client+proxy / moto: aiaas "
            f"{span([p['aiaas_cpu_s'] for p in pub], '{:.1f}')} / "
            f"{span([p['aiaas_moto_cpu_s'] for p in pub], '{:.1f}')}, upload_file "
            f"{span([p['upload_file_cpu_s'] for p in pub], '{:.1f}')} / "
            f"{span([p['upload_file_moto_cpu_s'] for p in pub], '{:.1f}')}; same answers: "
            f"{all(r['same_answer'] for r in rows)}"
        )
    return "\n".join(lines)


def publish_summary(runs: list[dict[str, Any]], names: list[str]) -> str:
    """Each model's publish ratio run by run, their median and range."""
    lines = []
    for model in names:
        pub = [run["publish"][model] for run in runs]
        ratios = [p["ratio"] for p in pub]
        lines.append(
            f"{model}: publish vs upload_file (goal >= 1) median {statistics.median(ratios):.2f}x,"
            f" {min(ratios):.2f}-{max(ratios):.2f}x over {len(ratios)} runs ("
            + ", ".join(f"{r:.2f}" for r in ratios)
            + f"); met in {sum(r >= 1 for r in ratios)}; client CPU s aiaas / upload_file "
            f"{statistics.median(p['aiaas_cpu_s'] for p in pub):.1f} / "
            f"{statistics.median(p['upload_file_cpu_s'] for p in pub):.1f} (medians)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
