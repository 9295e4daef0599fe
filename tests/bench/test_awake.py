"""bench/awake.py and the latency benches' CPU placement (bench/shadow_http.py)."""

from __future__ import annotations

import os
import time

import pytest

from bench import shadow_http
from bench.awake import cpus_awake

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")


def _policy(pid: int) -> int | None:
    try:
        return os.sched_getscheduler(pid)
    except OSError:
        return None


def test_one_idle_priority_spinner_per_cpu_while_inside_and_none_after() -> None:
    before = set(os.listdir("/proc"))
    with cpus_awake() as count:
        assert count == len(os.sched_getaffinity(0))
        spinners = [int(p) for p in set(os.listdir("/proc")) - before if p.isdigit()]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # each sets its own policy as it starts
            if sum(_policy(p) == os.SCHED_IDLE for p in spinners) >= count:
                break
            time.sleep(0.05)
        assert sum(_policy(p) == os.SCHED_IDLE for p in spinners) >= count
    # Killed and reaped on the way out: no idle-priority process of theirs is left.
    assert not [p for p in spinners if _policy(p) == os.SCHED_IDLE]


def test_the_servers_get_the_cpus_the_client_leaves() -> None:
    cpus = os.sched_getaffinity(0)
    try:
        shadow_http.pin_client(separate=True)
        assert os.sched_getaffinity(0) == {max(cpus)}
        assert (cpus - {max(cpus)} or cpus) == shadow_http.SERVER_CPUS
        shadow_http.pin_client(separate=False)  # the servers inherit the client's CPU
        assert not shadow_http.SERVER_CPUS
    finally:
        os.sched_setaffinity(0, cpus)
        shadow_http.SERVER_CPUS.clear()
