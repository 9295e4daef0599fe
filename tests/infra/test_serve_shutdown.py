"""How one-worker `aiaas serve` (granian's embedded server, in process) stops, past the easy
case that tests/infra/test_serve_hostile.py covers (SIGTERM, requests finish).

- A second signal while requests still run cuts them off: each caller gets a 503 saying to
  retry, the process says what it cut and exits 1 at once (a handler's thread cannot be
  stopped; granian's supervisor kills a worker past the grace, too). The same happens at the end of the 30 s
  grace; granian's own grace timeout raised out of `serve()` with a traceback and a 500.
- SIGHUP (a closed terminal) stops it like SIGTERM: its default action killed the process with
  requests in flight.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.infra.test_serve import ServeProcess
from tests.infra.test_serve_hostile import SLOW_TEMPLATE

SLOWER_HANDLER = """
import json, time

def model_seconds():  # as a predict function with a slow model says: run it on a thread
    return 1.0

def slow(event, context):
    seconds = 4 if event["rawPath"] == "/slow" else 0  # the ready route answers at once
    time.sleep(seconds)
    return {"statusCode": 200, "body": json.dumps({"slept": seconds})}
"""


def _slow_server(tmp_path: Path) -> ServeProcess:
    (tmp_path / "aiaas_slow_handler.py").write_text(textwrap.dedent(SLOWER_HANDLER))
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SLOW_TEMPLATE))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"))
    server = ServeProcess(tmp_path / "store", *args, env={"PYTHONPATH": str(tmp_path)})
    server.wait_ready()
    return server


def test_a_second_signal_cuts_requests_off_with_a_503(tmp_path: Path) -> None:
    server = _slow_server(tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.get, f"{server.base}/slow", timeout=10)
            time.sleep(0.5)  # in its handler
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            assert server.process.wait(timeout=10) == 1
            stopped_in = time.monotonic() - started
            cut = answer.result()
    finally:
        server.stop()
    assert stopped_in < 2.0  # not the handler's 4 s, nor the 30 s grace
    assert cut.status_code == 503 and "retry" in cut.json()["error"]
    assert "were cut off" in server.output() and "Traceback" not in server.output()


def test_sighup_stops_like_sigterm(tmp_path: Path) -> None:
    server = _slow_server(tmp_path)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.get, f"{server.base}/slow", timeout=10)
            time.sleep(0.5)
            server.process.send_signal(signal.SIGHUP)
            assert answer.result().json() == {"slept": 4}
            assert server.process.wait(timeout=10) == 0
    finally:
        server.stop()
    assert "aiaas serve: stopped" in server.output()


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(c) for task in tasks for c in (task / "children").read_text().split()]


def test_workers_end_with_a_killed_supervisor(tmp_path: Path) -> None:
    """SIGKILL (or the OOM killer) on granian's supervisor left its workers serving the port."""
    (tmp_path / "store").mkdir()
    server = ServeProcess(tmp_path / "store", "--workers", "2")
    try:
        server.wait_ready()
        workers = _children(server.process.pid)
        assert len(workers) == 2
        server.process.kill()
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()]
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.base}/v2/health/live", timeout=2)
    finally:
        server.stop()


def test_ctrl_c_twice_does_not_hang_a_worker(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: with --workers each worker gets
    the SIGINTs and the supervisor's SIGTERM. granian's worker stop signal, set again before it
    took the first, blocked the worker forever holding the GIL: the request in flight never got
    its answer and the stop waited for the supervisor's kill at the end of the 30 s grace."""
    (tmp_path / "aiaas_slow_handler.py").write_text(textwrap.dedent(SLOWER_HANDLER))
    (tmp_path / "template.yaml").write_text(textwrap.dedent(SLOW_TEMPLATE))
    (tmp_path / "store").mkdir()
    args = ("--template", str(tmp_path / "template.yaml"), "--workers", "2")
    env = {"PYTHONPATH": str(tmp_path)}
    server = ServeProcess(tmp_path / "store", *args, env=env, preexec=os.setsid)
    try:
        server.wait_ready()
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.get, f"{server.base}/slow", timeout=15)
            time.sleep(0.5)  # in its handler
            for _ in range(2):
                os.killpg(server.process.pid, signal.SIGINT)
                time.sleep(0.05)
            assert server.process.wait(timeout=10) == 0
            assert answer.result().json() == {"slept": 4}
    finally:
        if server.process.poll() is None:
            os.killpg(server.process.pid, signal.SIGKILL)
        server.stop()
