"""The local replay process failing or falling behind never reaches the caller: a full socket
drops the copy at once (counted), a replay process killed loses what it held (counted), the
service keeps answering, and a new replay process takes later copies."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from functions.shadow import channel
from infra.local.metrics import GatewayMetrics
from tests.client_gc import steady_client
from tests.functions.test_predict_events import http_event
from tests.functions.test_predict_shadow import (
    PREDICT,
    process_of,
    prometheus,
    registry_with,
    serve,
)

# Valid JSON padded with whitespace: ~64 KB a copy, so a few hundred fill the socket.
BIG = '{"inputs": [[1, 2, 3, 4]]' + " " * 64_000 + "}"


def threads_of(pid: int) -> list[str]:
    """Each thread of `pid`: its state, policy and where it waits (a failed drain says why)."""
    seen = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            wchan = Path(f"/proc/{pid}/task/{tid}/wchan").read_text()
            policy = os.sched_getscheduler(int(tid))
            seen.append(f"{tid} {stat.rsplit(')', 1)[1].split()[0]} policy {policy} {wchan}")
    return seen


def started(tmp_path: Path) -> tuple[PredictService, GatewayMetrics, int]:
    service, _, gateway = serve(registry_with(tmp_path, ("a", "b", "c")), tmp_path)
    assert service.handle(http_event("POST", PREDICT, BIG))["statusCode"] == 200
    process = process_of(service)
    assert process is not None
    # The replay process is up and has answered once. Late in CI's suite both drains of these
    # tests waited out their time (2026-12-07) with the replay idle in recv: the results thread
    # here had died in select() on a descriptor past 1024 (functions/shadow/channel.py now
    # uses a selector; test_shadow_high_descriptors.py). A failure names each replay thread's
    # state, policy and wait.
    settled = service.shadow.drain(60)
    assert settled, (os.getloadavg(), process.poll(), threads_of(process.pid))
    return service, gateway, process.pid


def test_a_full_socket_drops_and_counts_and_never_blocks_the_caller(tmp_path: Path) -> None:
    service, gateway, pid = started(tmp_path)
    os.kill(pid, signal.SIGSTOP)  # the replay process takes nothing more
    try:
        slowest = 0.0
        with steady_client() as pauses:  # a late xdist worker's collections are not the handler's
            for _ in range(600):
                start = time.perf_counter()
                assert service.handle(http_event("POST", PREDICT, BIG))["statusCode"] == 200
                slowest = max(slowest, time.perf_counter() - start)
        dropped = prometheus(gateway, m.SHADOW_DROPPED)
        assert 0 < dropped < 600  # some queued, the rest dropped at once
        assert slowest < 0.5, pauses  # never waited for the stopped process
    finally:
        os.kill(pid, signal.SIGCONT)
    assert service.shadow.drain(120)  # sends the last batch held (two of these copies)
    replayed = prometheus(gateway, m.SHADOW_REQUESTS)
    assert replayed + prometheus(gateway, m.SHADOW_DROPPED) == 601
    assert prometheus(gateway, m.SHADOW_DROPPED) - dropped <= 2


def test_a_killed_replay_process_drops_what_it_held_and_a_new_one_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel, "RESPAWN_S", 0.2)
    service, gateway, pid = started(tmp_path)
    os.kill(pid, signal.SIGSTOP)
    for _ in range(20):  # queued in the stopped process's socket
        assert service.handle(http_event("POST", PREDICT, BIG))["statusCode"] == 200
    os.kill(pid, signal.SIGKILL)
    assert service.shadow.drain(30)  # the copies it held are settled: dropped
    assert prometheus(gateway, m.SHADOW_DROPPED) == 20
    assert prometheus(gateway, m.SHADOW_REQUESTS) == 1
    time.sleep(0.3)
    for _ in range(5):  # the service answers on; a new replay process takes the copies
        assert service.handle(http_event("POST", PREDICT, BIG))["statusCode"] == 200
    new = process_of(service)
    assert new is not None and new.pid != pid
    assert service.shadow.drain(60)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == 6
