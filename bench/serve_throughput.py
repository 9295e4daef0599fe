"""`aiaas serve` against a hand-written FastAPI + uvicorn + onnxruntime server and against the floor
(a framework-free orjson + onnxruntime app on granian, aiaas serve's own server), same model, one run.

    python -m bench.serve_throughput [--duration 10] [--rounds 5] [--connections 32] [--workers 1]

The servers run side by side and take turns under load (`--rounds`), so the ratios compare
them under the same conditions on a shared machine. Load comes from wrk (Debian package `wrk`) in its own process over loopback; one wrk thread,
so the load generator takes one core at most. Prints requests/s, p50/p99 latency, errors and
the ratios of aiaas to the peer (goal >= 2x, p99 lower) and to the ASGI floor (goal >= 0.7x).

And what a request costs each server in CPU (read from /proc over its turns: bench/proc_cpu.py):
all its processes' threads, and its busiest thread, the event loop's, whose CPU a request sets
a one-worker server's throughput. For `aiaas serve`, also the mean request time the gateway
itself records (its /metrics), to set beside `python -m bench.serve_app_cost`'s in-process
figure: the same app costs more a request inside a loaded server (docs/benchmarks/serve.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.args import count
from bench.compare.measure import free_ports
from bench.models import publish_mlp
from bench.proc_cpu import snapshot, used
from bench.scratch import scratch_dir

MODEL = "bench-mlp"
LUA = """
wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""


def wait_ready(url: str, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until `url` answers; a `proc` that exits first (its port taken, a bad flag) is an error
    at once, not a minute's wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with code {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text).group()), re.sub(r"[\d.]+", "", text)  # type: ignore[union-attr]
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url: str, body: str, connections: int, duration: int, work: Path) -> dict[str, float]:
    script = work / "post.lua"
    script.write_text(LUA.format(body=body))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {"rps": rps, "requests": done, "p50_ms": p50, "p99_ms": p99, "errors": errors}


def gateway_request_us(base: str) -> float | None:
    """The mean time of a predict request as `aiaas serve` itself records it (its /metrics), or
    None for a server without those metrics."""
    try:
        text = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    except urllib.error.HTTPError:  # a peer without /metrics
        return None
    except OSError as exc:
        print(f"  (could not read {base}/metrics: {exc})", file=sys.stderr)
        return None
    totals = {"sum": 0.0, "count": 0.0}
    for kind, labels, value in re.findall(
        r"^aiaas_request_duration_seconds_(sum|count)\{(.*)\} (\S+)$", text, re.M
    ):
        if 'route="POST /models/' in labels:  # the route's template holds braces: {name}
            totals[kind] += float(value)
    return 1e6 * totals["sum"] / totals["count"] if totals["count"] else None


def measure(
    servers: dict[str, tuple[list[str], str, str, str, str]],
    connections: int,
    duration: int,
    rounds: int,
    env: dict[str, str],
    work: Path,
) -> dict[str, dict[str, float]]:
    """Every server up at once, driven in turns: `rounds` rounds of `duration / rounds` seconds
    each, so a change in the machine's load (it is shared) falls on all of them alike.
    Requests/s over all rounds; p50 and p99 the median of the rounds'."""
    procs = {
        name: subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name, (cmd, *_rest) in servers.items()
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for name, (_, base, path, health, body) in servers.items():
            wait_ready(base + health, proc=procs[name])
            run_wrk(base + path, body, connections, 2, work)  # warm-up
        slice_s = max(1, round(duration / rounds))
        for _ in range(rounds):
            for name, (_, base, path, _health, body) in servers.items():
                before = snapshot(procs[name].pid)
                run = run_wrk(base + path, body, connections, slice_s, work)
                cpu = used(before, snapshot(procs[name].pid))
                runs[name].append({**run, "cpu_s": cpu.total_s, "loop_s": cpu.busiest_thread_s})
        recorded = {name: gateway_request_us(base) for name, (_, base, *_r) in servers.items()}
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait(timeout=10)
    return {
        name: {
            "rps": statistics.fmean(r["rps"] for r in done),
            "p50_ms": statistics.median(r["p50_ms"] for r in done),
            "p99_ms": statistics.median(r["p99_ms"] for r in done),
            "errors": sum(r["errors"] for r in done),
            # CPU a request over all turns (0 where /proc could not be read)
            "cpu_us": 1e6
            * sum(r["cpu_s"] for r in done)
            / max(1, sum(r["requests"] for r in done)),
            "loop_us": 1e6
            * sum(r["loop_s"] for r in done)
            / max(1, sum(r["requests"] for r in done)),
            "recorded_us": recorded[name] or 0.0,
        }
        for name, done in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=count, default=10, help="seconds per server, in all")
    parser.add_argument(
        "--rounds", type=count, default=5, help="turns each server's time is cut in"
    )
    parser.add_argument("--connections", type=count, default=32)
    parser.add_argument("--workers", type=count, default=1, help="aiaas serve --workers")
    args = parser.parse_args()
    if args.duration < args.rounds:
        parser.error("--duration must be at least --rounds: a turn lasts 1 s or more")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    work = scratch_dir("aiaas-serve-bench-")
    model_path = publish_mlp(work / "store", MODEL)
    row = json.dumps([[0.5] * 64])
    # No token: wrk sends none, and /metrics is read without one (a token set in the shell
    # would have every request refused).
    untokened = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_API_TOKEN")}
    env = {
        **untokened,
        "AIAAS_STORE": str(work / "store"),
        "AIAAS_CACHE_DIR": str(work / "cache"),
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    # Free ports, never fixed ones: a server left on one from an earlier run would answer the
    # health check and be measured in place of the one this run started.
    aiaas_port, fastapi, floor_asgi, floor_rsgi = (str(port) for port in free_ports(4))
    servers = {
        "aiaas serve": (
            [
                sys.executable,
                "-m",
                "infra.cli.main",
                "serve",
                "--port",
                aiaas_port,
                "--workers",
                str(args.workers),
            ],
            f"http://127.0.0.1:{aiaas_port}",
            f"/models/{MODEL}/predict",
            "/v2/health/live",
            json.dumps({"inputs": json.loads(row)}),
        ),
        "FastAPI + uvicorn": (
            [sys.executable, "-m", "bench.peers.fastapi_server", str(model_path), fastapi],
            f"http://127.0.0.1:{fastapi}",
            "/predict",
            "/docs",
            json.dumps({"inputs": json.loads(row)}),
        ),
    }
    for interface in ("asgi", "rsgi"):
        port = {"asgi": floor_asgi, "rsgi": floor_rsgi}[interface]
        servers[f"floor {interface.upper()} (granian)"] = (
            [sys.executable, "-m", "bench.peers.floor_app", str(model_path), port, interface],
            f"http://127.0.0.1:{port}",
            "/predict",
            "/",
            json.dumps({"inputs": json.loads(row)}),
        )
    results = measure(servers, args.connections, args.duration, args.rounds, env, work)
    print(
        f"\nMLP 64-256-256-10, one row per request, {args.connections} connections, {args.duration} s each in {args.rounds} turns, wrk -t1"
    )
    print(
        f"  {'server':22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'CPU us/req':>11} {'loop us/req':>12}"
    )
    for name, r in results.items():
        print(
            f"  {name:22} {r['rps']:9.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:7.0f}"
            f" {r['cpu_us']:11.1f} {r['loop_us']:12.1f}"
        )
    ours, peer = results["aiaas serve"], results["FastAPI + uvicorn"]
    floor, rsgi = results["floor ASGI (granian)"], results["floor RSGI (granian)"]
    print(
        f"\n  aiaas / FastAPI + uvicorn: {ours['rps'] / peer['rps']:.2f}x throughput,"
        f" {ours['p99_ms'] / peer['p99_ms']:.2f}x p99 (goal >= 2x, p99 lower)"
        f"\n  aiaas / floor ASGI app:    {ours['rps'] / floor['rps']:.2f}x throughput (goal >= 0.7x)"
        f"\n  aiaas / floor RSGI app:    {ours['rps'] / rsgi['rps']:.2f}x throughput"
    )
    if ours["recorded_us"]:
        print(
            f"\n  aiaas serve's own record of a predict request under this load (its /metrics):"
            f" {ours['recorded_us']:.1f} us on average (in process, without HTTP or load:"
            " python -m bench.serve_app_cost)"
        )


if __name__ == "__main__":
    main()
