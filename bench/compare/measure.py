"""Measurements taken from outside a server process: cold start, wrk load, peak RSS.

Cold start is process spawn until the first *correct* answer (compared with raw onnxruntime's),
polled in a bounded loop. Load comes from wrk with one thread (one core at most) in its own
process. Peak RSS is VmHWM summed over the server process and its live children.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from bench.compare.servers import Launch, Server
from bench.compare.workloads import ROOT, Workload

POLL_S = 0.01
START_TIMEOUT_S = 120.0
LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Running:
    """A started server: its process, where its output goes and when it was spawned."""

    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    port: int


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def start(launch: Launch, port: int, env: dict[str, str], log: Path) -> Running:
    out: IO[bytes] = log.open("ab")
    started = time.perf_counter()
    proc = subprocess.Popen(
        launch.argv,
        env={**os.environ, **env, **launch.env},
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() reaches its workers too
    )
    out.close()
    return Running(proc, log, started, port)


def post(port: int, path: str, body: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def correct(server: Server, w: Workload, status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        got = server.answer(json.loads(body), w)
    except (ValueError, KeyError, TypeError, IndexError):
        return False
    return got.shape == w.expected.shape and bool(np.allclose(got, w.expected, atol=1e-4))


def first_answer_s(
    running: Running, server: Server, w: Workload, launch: Launch
) -> tuple[float, float]:
    """Seconds from spawn to the first correct answer, and the CPU ms spent by then.

    Raises with the log's last error if no correct answer comes.
    """
    deadline = running.started + START_TIMEOUT_S
    last = "no answer"
    while time.perf_counter() < deadline:
        if running.proc.poll() is not None:
            raise RuntimeError(f"exited with {running.proc.returncode}: {log_tail(running.log)}")
        try:
            status, body = post(running.port, launch.path, launch.body)
        except OSError as exc:
            last = type(exc).__name__
        else:
            if correct(server, w, status, body):
                return time.perf_counter() - running.started, tree_cpu_ms(running.proc.pid)
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(POLL_S)
    raise RuntimeError(f"no correct answer in {START_TIMEOUT_S:.0f} s (last: {last})")


def log_tail(log: Path, lines: int = 2) -> str:
    """The log's last error line if it has one (shutdown chatter follows it), else its tail."""
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    errors = [line for line in text if re.search(r"Error\b|Exception\b|error:", line)]
    return " / ".join(line.strip()[:200] for line in (errors[-1:] or text[-lines:]))


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in (task / "children").read_text().split()]
    return kids


def tree_peak_rss_mib(pid: int) -> float:
    """VmHWM of the process and all its live descendants, summed (an upper bound on the peak)."""
    total_kib, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{current}/status").read_text()
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
            total_kib += int(match.group(1)) if match else 0
            todo += _children(current)
    return total_kib / 1024


def tree_cpu_ms(pid: int) -> float:
    """CPU time (user + system, incl. reaped children) of the process and its live descendants.

    Unlike wall time it barely moves when other work shares the cores, so cold starts stay
    comparable on a busy machine.
    """
    ticks, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, ValueError):
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
            todo += _children(current)
    return ticks * 1e3 / os.sysconf("SC_CLK_TCK")


def stop(running: Running) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.proc.pid, signal.SIGTERM)
    try:
        running.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.proc.pid, signal.SIGKILL)
        running.proc.wait(timeout=15)


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[match.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    def find(pattern: str) -> str:
        match = re.search(pattern, out, re.M)
        if not match:
            raise ValueError(f"wrk output has no {pattern!r}: {out[-500:]}")
        return match.group(1)

    errors = 0
    if non2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(non2xx.group(1))
    if socket_errors := re.search(r"Socket errors: (.*)", out):
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return {
        "rps": float(find(r"Requests/sec:\s+([\d.]+)")),
        "p50_ms": _ms(find(r"^\s+50%\s+(\S+)")),
        "p99_ms": _ms(find(r"^\s+99%\s+(\S+)")),
        "requests": float(find(r"(\d+) requests in")),
        "errors": float(errors),
    }


def wrk(port: int, launch: Launch, connections: int, seconds: float, work: Path) -> dict[str, Any]:
    """One wrk run (one thread) against the server's request; its figures."""
    script = work / f"post-{port}.lua"
    script.write_text(LUA.format(body=launch.body.decode()))
    url = f"http://127.0.0.1:{port}{launch.path}"
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout)
