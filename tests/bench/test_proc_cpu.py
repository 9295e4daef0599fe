"""bench/proc_cpu.py (a server's CPU a request, from /proc) and what bench/serve_throughput.py
reads from a real `aiaas serve`'s /metrics."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.proc_cpu import snapshot, used
from bench.serve_throughput import gateway_request_us
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ServeProcess

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")

# A parent that forks a child which spins for `seconds` (granian's supervisor forks its worker
# the same way): the CPU must be found in the child's thread, under the parent's pid.
SPINNING_CHILD = """
import os, sys, time
if os.fork() == 0:
    end = time.process_time() + float(sys.argv[1])
    while time.process_time() < end:
        pass
    os._exit(0)
sys.stdout.write("forked\\n"); sys.stdout.flush()
os.wait()
"""


def test_the_cpu_of_a_forked_child_is_found_under_its_parent() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", SPINNING_CHILD, "2.0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "forked\n"
        before = snapshot(parent.pid)
        assert len({pid for pid, _ in before}) == 2  # the parent and its child
        # The child spins for 2 s of CPU: measured while it runs, however loaded the host.
        deadline = time.monotonic() + 30
        cpu = used(before, snapshot(parent.pid))
        while cpu.busiest_thread_s < 0.2 and time.monotonic() < deadline:
            time.sleep(0.1)
            cpu = used(before, snapshot(parent.pid))
    finally:
        parent.wait(timeout=30)
    assert cpu.busiest_thread_s >= 0.2
    assert cpu.total_s >= cpu.busiest_thread_s


def test_a_thread_that_starts_between_the_snapshots_counts_from_zero() -> None:
    before = {(1, 1): 2.0}
    after = {(1, 1): 2.5, (1, 2): 0.75}
    cpu = used(before, after)
    assert cpu.total_s == pytest.approx(1.25)
    assert cpu.busiest_thread_s == pytest.approx(0.75)


def test_the_mean_predict_time_read_from_a_real_aiaas_serve(tmp_path: Path) -> None:
    store, _ = publish_digits(tmp_path)
    server = ServeProcess(store)
    try:
        server.wait_ready()
        assert gateway_request_us(server.base) is None  # no predict request answered yet
        with httpx.Client(base_url=server.base) as client:
            for _ in range(20):
                answer = client.post(f"/models/{MODEL}/predict", json={"inputs": [[0.5] * 64]})
                assert answer.status_code == 200, answer.text
            client.get("/v2/health/live")  # another route: not counted
        mean_us = gateway_request_us(server.base)
    finally:
        server.stop()
    # The route's label holds braces (`POST /models/{name}/predict`), which a label pattern
    # stopping at the first `}` missed: nothing was found and no mean printed.
    assert mean_us is not None and 1 < mean_us < 1e6
