"""What callers of a real `aiaas serve` see with shadow traffic on vs off: p50/p99 over HTTP.

    python -m bench.shadow_http [--sample 1.0] [--rate 2000] [--runs 3] [--blocks 4]
                                [--block-s 3] [--code DIR] [--no-awake]

The MLP of bench.shadow_latency (64->256->256->10) as version 1, another as version 2, in a
local store; `@off` points at 1, `@production` at 1 with 2 as its shadow at `--sample`. Two
`aiaas serve` processes (the real CLI, one worker each) run side by side, one per alias
(`--selector`), and take turns in blocks of `--block-s` seconds, `--blocks` pairs a run, off
first in one pair and on first in the next, so drift in the machine (it is shared) falls on both
alike. After every block the bench waits until the shadow's replay process has settled the
copies (`/metrics`), so every block starts after the same pause.

Two loads, both over loopback with keep-alive:
- `--rate R` (default 2000): one connection, a request every 1/R s on a schedule, from a client
  pinned to the last CPU; latency from the request's scheduled time to its whole response
  (a late response delays the next send, and that wait counts: no coordinated omission); the
  p99 over all of a run's requests, and the ratio of the blocks' median p99s (a stall of the
  shared machine during one block sets the former);
- `--rate 0`: back to back, wrk (`apt-get install wrk`) with `--connections` connections and
  one thread; its p99 for each block, the median over a run's blocks.
`--code DIR`: the servers run that checkout's code (e.g. the main branch, before a change).
The CPUs are kept out of idle (bench/awake.py; `--no-awake`: not) and the servers then run on
the CPUs the client leaves (without it all share the client's, as before 2026-12-04: waking a
halted vCPU across cost more than sharing one). `AIAAS_SHADOW_CPUS=1` in the environment puts
the shadow's replay process on the client's CPU instead of the server's.
The goal (issue #17): shadow-on p99 within 5% of shadow-off p99.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.args import checkout, count, rate, rate_or_zero, share
from bench.awake import cpus_awake
from bench.serve_throughput import run_wrk, wait_ready
from bench.shadow_latency import publish_pair
from functions.predict import metric_names as m
from tests.s3server import free_port

ROOT = Path(__file__).resolve().parents[1]
PATH = "/models/m/predict"
SERVER_CPUS: set[int] = set()  # empty: where the bench runs


def start(store: Path, selector: str, code: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "AIAAS_API_TOKEN"}
    env |= {"PYTHONPATH": str(code), "AIAAS_CACHE_DIR": str(store.parent / f"cache-{port}")}
    env |= {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(store), "serve"]
    command += ["--port", str(port), "--selector", selector, "--models", "m"]
    # On the CPUs the client leaves (pin_client): forked by a pinned client, a server (and
    # the replay process it starts) would inherit its one CPU and share it with the client.
    cpus = SERVER_CPUS.copy()
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    process = subprocess.Popen(
        command, cwd=code, env=env, stdout=subprocess.DEVNULL, preexec_fn=pin
    )
    wait_ready(f"http://127.0.0.1:{port}/v2/models/m/ready")
    return process, port


def request_bytes(port: int, body: bytes) -> bytes:
    head = f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode())
    return body


def paced(port: int, bodies: list[bytes], rate: float, seconds: float) -> list[float]:
    """Latencies (s) of requests sent every 1/rate s for `seconds`, from the scheduled time."""
    requests = [request_bytes(port, body) for body in bodies]
    times = []
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        due = time.perf_counter()
        for i in range(int(rate * seconds)):
            due += 1 / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sock.sendall(requests[i % len(requests)])
            read_response(sock)
            times.append(time.perf_counter() - due)
    return times


def settled(port: int, timeout: float = 30) -> float:
    """Copies the shadow has settled (replayed, failed or dropped), once that stops growing."""
    last, deadline = -1.0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            text = read_response(sock).decode()
        names = (m.SHADOW_REQUESTS, m.SHADOW_ERRORS, m.SHADOW_DROPPED)
        total = sum(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith(names) and not line.startswith("#")
        )
        if total == last:
            return total
        last = total
        time.sleep(0.3)
    return last


def request_bodies() -> list[bytes]:
    """The 500 one-row simple-JSON bodies both benches send (the MLP's 64 inputs, seeded)."""
    rng = np.random.default_rng(0)
    return [json.dumps({"inputs": [r.tolist()]}).encode() for r in rng.normal(size=(500, 64))]


def one_run(
    ports: dict[str, int], bodies: list[bytes], args: argparse.Namespace, *, settle: bool = True
) -> dict[str, float]:
    """One run of `args.blocks` off/on pairs: both sides' p50 and p99, their ratio and the
    blocks' median ratio. `settle`: wait for the shadow's copies after every block."""
    p99s: dict[str, list[float]] = {"off": [], "on": []}
    times: dict[str, list[float]] = {"off": [], "on": []}
    for pair in range(args.blocks):
        # Turns alternate (off first, then on first) and every block follows the same settle:
        # a block that always came first after an idle pause ran on colder caches and clocks.
        order = list(ports.items()) if pair % 2 == 0 else list(reversed(ports.items()))
        for case, port in order:
            if args.rate:
                block = paced(port, bodies, args.rate, args.block_s)
                times[case] += block
                p99s[case].append(float(np.percentile(block, 99)) * 1e3)
            else:
                url = f"http://127.0.0.1:{port}{PATH}"
                wrk = run_wrk(url, bodies[0].decode(), args.connections, args.block_s, args.work)
                assert wrk["errors"] == 0, wrk
                p99s[case].append(wrk["p99_ms"])
                times[case].append(wrk["p50_ms"] / 1e3)
            if settle:
                settled(ports["on"])  # the copies replayed before the next block, either side
    f: dict[str, float] = {}
    for case in ports:
        if args.rate:
            f[f"{case}_p50"], f[f"{case}_p99"] = np.percentile(
                np.array(times[case]) * 1e3, [50, 99]
            )
        else:
            f[f"{case}_p50"] = statistics.median(times[case]) * 1e3
            f[f"{case}_p99"] = statistics.median(p99s[case])
    f["ratio"] = f["on_p99"] / f["off_p99"]
    # A stall of the shared machine in one block sets a pooled p99; the blocks' median does not.
    f["block_ratio"] = statistics.median(p99s["on"]) / statistics.median(p99s["off"])
    return f


def add_run_flags(parser: argparse.ArgumentParser, back_to_back: bool) -> None:
    """The flags `one_run` reads, and `--sample`: the same in every bench that runs it.
    `back_to_back`: `--rate 0` runs wrk (with `--connections` and a work folder); a bench
    without them takes a rate above 0 only."""
    parser.add_argument("--sample", type=share, default=1.0)
    if back_to_back:
        parser.add_argument(
            "--rate", type=rate_or_zero, default=2000, help="requests/s; 0: wrk back to back"
        )
    else:
        parser.add_argument("--rate", type=rate, default=2000, help="requests/s, one connection")
    parser.add_argument("--runs", type=count, default=3)
    parser.add_argument("--blocks", type=count, default=4, help="off/on pairs a run")
    parser.add_argument("--block-s", type=count, default=3)
    parser.add_argument(
        "--awake",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep the CPUs out of idle (bench/awake.py), the servers off the client's CPU",
    )


def print_run(run: int, f: dict[str, float], tail: str) -> None:
    """A run's figures as one line, `tail` (what the bench counted besides) last."""
    print(
        f"run {run + 1}: off p50 {f['off_p50']:.3f} ms p99 {f['off_p99']:.3f} ms | "
        f"on p50 {f['on_p50']:.3f} ms p99 {f['on_p99']:.3f} ms | "
        f"p99 on/off {f['ratio']:.3f} (blocks' median {f['block_ratio']:.3f}) | {tail}",
        flush=True,
    )


def stop(servers: dict[str, tuple[subprocess.Popen[bytes], int]]) -> None:
    """End the servers `start` began, each waited for."""
    for process, _ in servers.values():
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_run_flags(parser, back_to_back=True)
    parser.add_argument("--connections", type=count, default=4, help="wrk's, back to back")
    parser.add_argument("--code", type=checkout, default=ROOT, help="the checkout the servers run")
    args = parser.parse_args()
    if not args.rate and not shutil.which("wrk"):
        parser.error("--rate 0 runs wrk, which is not installed: apt-get install -y wrk")
    with cpus_awake() if args.awake else contextlib.nullcontext(0):
        if args.rate:
            pin_client(separate=args.awake)
        measure(args)


def pin_client(separate: bool) -> None:
    """The client on the last CPU; `separate`: the servers started after this on the others,
    a caller elsewhere as in use, else on the client's too (they inherit its CPU). Separate
    only with the CPUs kept awake: on this VM a wake-up across halted vCPUs cost 2.3-3.1 ms
    p99 against 0.5-1.0 ms all on one (docs/rollout.md, 2026-12-01), which is why the bench
    kept client, servers and the replay process on one vCPU until 2026-12-04."""
    cpus = os.sched_getaffinity(0)
    client = max(cpus)
    os.sched_setaffinity(0, {client})
    SERVER_CPUS.clear()
    if separate:
        SERVER_CPUS.update(cpus - {client} or cpus)


def measure(args: argparse.Namespace) -> None:
    bodies = request_bodies()
    with tempfile.TemporaryDirectory() as root:
        args.work = Path(root)
        store = Path(root) / "store"
        publish_pair(Path(root), args.sample)
        pairs = (("off", "@off"), ("on", "@production"))
        servers = {case: start(store, selector, args.code) for case, selector in pairs}
        ports = {case: port for case, (_, port) in servers.items()}
        try:
            for port in ports.values():  # warm: models loaded, replay process spawned
                paced(port, bodies, 1000, 1)
            for run in range(args.runs):
                before = settled(ports["on"])
                f = one_run(ports, bodies, args)
                copies = settled(ports["on"]) - before
                print_run(run, f, f"copies settled {copies:.0f}")
        finally:
            stop(servers)


if __name__ == "__main__":
    main()
