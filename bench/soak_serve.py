"""Soak of `aiaas serve`: N requests from C concurrent connections, every answer checked.

A mix of the three predict forms (simple JSON, OIP JSON, OIP binary) for one MLP. A warm-up
pass runs first; the server's RSS (from /proc) is read after it and again after the main run,
so growth means memory that requests leave behind, not the model load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODEL = "soak-mlp"


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process and its children (granian's workers), from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for one in (pid, *map(int, children)):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    if total:
        return total
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_server(store: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`aiaas serve` (one worker) on loopback; returns once it answers ready."""
    env = {
        **os.environ,
        "AIAAS_CACHE_DIR": str(store.parent / "cache"),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    argv = [sys.executable, "-m", "infra.cli.main", "--store", str(store), "serve"]
    argv += ["--port", str(port), "--models", MODEL]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"aiaas serve exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return process
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("aiaas serve not ready within 60 s")


def request_for(i: int, row: np.ndarray) -> tuple[str, dict[str, Any]]:
    """The i-th request of the mix: (path, httpx keyword arguments)."""
    if i % 3 == 0:
        return f"/models/{MODEL}/predict", {"json": {"inputs": row.tolist()}}
    tensor = {"name": "x", "shape": list(row.shape), "datatype": "FP32"}
    if i % 3 == 1:
        body = {"inputs": [{**tensor, "data": row.ravel().tolist()}]}
        return f"/v2/models/{MODEL}/infer", {"json": body}
    data = row.astype("<f4").tobytes()
    head = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(data)}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    headers = {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }
    return f"/v2/models/{MODEL}/infer", {"content": head + data, "headers": headers}


def logits_of(i: int, answer: httpx.Response) -> np.ndarray:
    if i % 3 == 0:
        return np.asarray(answer.json()["outputs"]["logits"], np.float32)
    if i % 3 == 1:
        return np.asarray(answer.json()["outputs"][0]["data"], np.float32)
    length = int(answer.headers["inference-header-content-length"])
    return np.frombuffer(answer.content[length:], "<f4")


def fire(
    base: str, rows: np.ndarray, concurrency: int, check: Callable[[int, httpx.Response], bool]
) -> tuple[list[float], list[str], float]:
    """Every row as one request from `concurrency` threads: latencies (s), failures, wall (s)."""
    local = threading.local()
    clients: list[httpx.Client] = []
    latencies = [0.0] * len(rows)
    failures: list[str] = []

    def one(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, timeout=60)
            clients.append(local.client)
        path, kwargs = request_for(i, rows[i : i + 1])
        start = time.perf_counter()
        try:
            answer = local.client.post(path, **kwargs)
        except httpx.HTTPError as exc:
            failures.append(f"{i}: {exc!r}")
            return
        latencies[i] = time.perf_counter() - start
        if answer.status_code != 200 or not check(i, answer):
            failures.append(f"{i}: {answer.status_code} {answer.text[:200]}")

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(len(rows))))
    wall = time.perf_counter() - began
    for client in clients:
        client.close()
    return latencies, failures, wall


def serve_soak(work: Path, requests: int, concurrency: int, port: int) -> dict[str, Any]:
    """Warm up, then `requests` requests at `concurrency`; errors, p50/p99, RSS before/after."""
    from bench.models import publish_mlp

    onnx = publish_mlp(work / "store", MODEL)
    import onnxruntime as ort

    rng = np.random.default_rng(11)
    warm_rows = rng.normal(size=(max(4 * concurrency, requests // 10), 64)).astype(np.float32)
    rows = rng.normal(size=(requests, 64)).astype(np.float32)
    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    expected = session.run(["logits"], {"x": rows})[0]

    def correct(i: int, answer: httpx.Response) -> bool:
        return bool(np.allclose(logits_of(i, answer).ravel(), expected[i], rtol=1e-4, atol=1e-5))

    server = start_server(work / "store", port, work / "serve.log")
    try:
        base = f"http://127.0.0.1:{port}"
        _, warm_failures, _ = fire(base, warm_rows, concurrency, lambda i, a: True)
        # `aiaas serve` starts functions lazily (predict first, the rest in the background):
        # touch every function so the baseline is a fully initialised server, as after any
        # real warm-up, and RSS growth measures leaks, not first-time imports.
        for path in ("/v2/health/live", "/docs", "/control/models"):
            httpx.get(base + path, timeout=30)
        rss_warm = rss_bytes(server.pid)
        latencies, failures, wall = fire(base, rows, concurrency, correct)
        rss_end = rss_bytes(server.pid)
    finally:
        server.terminate()
        server.wait(30)
    ms = np.asarray(latencies) * 1e3
    return {
        "requests": requests,
        "concurrency": concurrency,
        "warmup_requests": len(warm_rows),
        "errors": len(failures) + len(warm_failures),
        "first_errors": (warm_failures + failures)[:5],
        "seconds": round(wall, 2),
        "requests_per_s": round(requests / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "rss_after_warmup_mib": round(rss_warm / 2**20, 1),
        "rss_end_mib": round(rss_end / 2**20, 1),
        "rss_growth_pct": round(100 * (rss_end - rss_warm) / rss_warm, 2),
    }
