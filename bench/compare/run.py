"""One benchmark run: every server on every model, one after another, figures into a dict.

Servers never overlap: each (model, server) pair is started `cold_runs` times for the cold
start, and the last start stays up for the load levels and the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.compare import inprocess
from bench.compare.measure import first_answer_s, free_ports, start, stop, tree_peak_rss_mib, wrk
from bench.compare.servers import PROJECT_PYTHON, SERVERS, Server, base_env
from bench.compare.workloads import Workload
from bench.peer_envs import PeerUnavailable, ensure


@dataclass(frozen=True)
class Plan:
    """How long and how often to measure."""

    concurrency: tuple[int, ...]
    seconds: float
    warmup_seconds: float
    cold_runs: int
    repeat: int  # in-process calls per median
    quick: bool


FULL = Plan((1, 8, 32, 64), 10, 3, 5, 20000, quick=False)
QUICK = Plan((1, 8, 32, 64), 2, 1, 1, 2000, quick=True)


def parse_names(value: str, known: Mapping[str, object], what: str) -> list[str]:
    """A comma-separated command-line list, every name checked against `known`."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown}; known: {', '.join(known)}")
    if not names:  # measured nothing, and wrote that empty report over the last one
        raise argparse.ArgumentTypeError(f"name at least one {what} of {', '.join(known)}")
    return names


def say(text: str) -> None:
    print(text, flush=True)


def interpreters(keys: list[str]) -> tuple[dict[str, Path], dict[str, dict[str, Any]]]:
    """Each server's Python, installing peer venvs as needed; skipped ones with the reason."""
    pythons: dict[str, Path] = {}
    status: dict[str, dict[str, Any]] = {}
    for key in keys:
        server = SERVERS[key]
        if server.peer is None:
            pythons[key] = PROJECT_PYTHON
            status[key] = {"status": "ok", "versions": project_versions(key)}
            continue
        try:
            env = ensure(server.peer)
        except (PeerUnavailable, subprocess.SubprocessError, OSError) as exc:
            status[key] = {"status": "skipped", "reason": f"install failed: {exc}"}
            say(f"SKIP {server.title}: could not install it: {exc}")
            continue
        pythons[key] = env.python
        status[key] = {"status": "ok", "versions": env.versions}
    return pythons, status


def project_versions(key: str) -> dict[str, str]:
    names = ["onnxruntime", "numpy", "orjson", "granian"]
    if key == "fastapi":
        names = ["fastapi", "uvicorn", "pydantic", "onnxruntime", "numpy"]
    return {name: metadata.version(name) for name in names}


def bench_server(
    server: Server, w: Workload, python: Path, plan: Plan, work: Path
) -> dict[str, Any]:
    """Cold starts, then every load level on the last start, then its peak RSS."""
    cold_s: list[float] = []
    cold_cpu_ms: list[float] = []
    log = work / "logs" / f"{w.key}-{server.key}.log"
    log.parent.mkdir(exist_ok=True)
    for i in range(plan.cold_runs):
        ports = free_ports(3)
        launch = server.launch(w, python, ports, work)
        running = start(launch, ports[0], base_env(), log)
        try:
            seconds, cpu_ms = first_answer_s(running, server, w, launch)
        except RuntimeError:
            stop(running)
            raise
        cold_s.append(seconds)
        cold_cpu_ms.append(cpu_ms)
        if i < plan.cold_runs - 1:
            stop(running)
    try:
        wrk(running.port, launch, 32, plan.warmup_seconds, work)
        levels = {}
        for connections in plan.concurrency:
            levels[str(connections)] = wrk(running.port, launch, connections, plan.seconds, work)
            r = levels[str(connections)]
            say(
                f"    c={connections:<3} {r['rps']:8.0f} req/s  p50 {r['p50_ms']:7.2f} ms"
                f"  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']:.0f}"
            )
        rss = tree_peak_rss_mib(running.proc.pid)
    finally:
        stop(running)
    cold_ms = [s * 1e3 for s in cold_s]
    say(
        f"    cold start {statistics.median(cold_ms):.0f} ms (median of {len(cold_ms)}; CPU "
        f"{statistics.median(cold_cpu_ms):.0f} ms), peak RSS {rss:.0f} MiB"
    )
    return {
        "cold_ms": statistics.median(cold_ms),
        "cold_runs_ms": cold_ms,
        "cold_cpu_ms": statistics.median(cold_cpu_ms),
        "levels": levels,
        "peak_rss_mib": rss,
    }


def bench_inprocess(w: Workload, plan: Plan, work: Path) -> dict[str, Any]:
    say(f"  in-process handler vs raw session.run ({plan.repeat} calls per median)")
    figures = {**inprocess.warm(w, work, plan.repeat), **inprocess.cold(w, work, plan.cold_runs)}
    say(
        f"    raw {min(figures['raw_default_us'], figures['raw_aiaas_options_us']):.1f} us, "
        f"handler {figures['handler_us']:.1f} us ({figures['ratio']:.2f}x); cold: floor "
        f"{figures['floor_ms']:.0f} ms, handler {figures['handler_ms']:.0f} ms"
    )
    return figures


def run(workloads: list[Workload], keys: list[str], plan: Plan, work: Path) -> dict[str, Any]:
    """The whole matrix; a server that fails on a model is recorded as skipped with the reason."""
    pythons, status = interpreters(keys)
    before = meta(plan, status)  # the load average before our own servers add to it
    say(f"load average before the run: {before['load_average']} (figures are noisy above ~0.5)")
    results: dict[str, dict[str, Any]] = {}
    for w in workloads:
        say(f"\n== {w.title} ({w.source})")
        results[w.key] = {"inprocess": bench_inprocess(w, plan, work), "servers": {}}
        for key, python in pythons.items():
            server = SERVERS[key]
            say(f"  {server.title}")
            try:
                figures = bench_server(server, w, python, plan, work)
            except (RuntimeError, subprocess.SubprocessError, ValueError, OSError) as exc:
                say(f"SKIP {server.title} on {w.title}: {exc}")
                figures = {"skipped": str(exc)}
            results[w.key]["servers"][key] = figures
    return {
        "meta": before,
        "workloads": [describe(w) for w in workloads],
        "results": results,
    }


def describe(w: Workload) -> dict[str, Any]:
    return {
        "key": w.key,
        "title": w.title,
        "model": w.model,
        "source": w.source,
        "input": f"{w.input_name} {w.datatype} {list(w.row.shape)}",
        "onnx_bytes": w.onnx.stat().st_size,
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def meta(plan: Plan, servers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {len(os.sched_getaffinity(0))} cores, "
        f"{mem_kib / 2**20:.0f} GiB RAM, {platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        # Other work on the machine skews every figure; the report shows how busy it was.
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "wrk": (wrk_version.split("\n")[0].split(" [")[0] or "wrk").strip(),
        "plan": {
            "concurrency": list(plan.concurrency),
            "seconds": plan.seconds,
            "warmup_seconds": plan.warmup_seconds,
            "cold_runs": plan.cold_runs,
            "repeat": plan.repeat,
            "quick": plan.quick,
        },
        "servers": servers,
    }
