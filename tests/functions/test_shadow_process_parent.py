"""The replay process dies with the process it serves: killed (SIGKILL) while a process it
forked still holds its end of the socket (so no EOF comes), the parent-death signal ends the
replay process; and a live parent whose spawning thread exits keeps its replay process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.functions.test_predict_shadow import replay_env

# The parent: spawns the replay process from a thread that then exits, forks a child that
# keeps the socket open, prints the pids and waits.
PARENT = textwrap.dedent(
    """
    import os, sys, threading, time
    from functions.shadow.channel import ReplayChannel
    channel = ReplayChannel(dict(os.environ), lambda *a: None, lambda *a: None)
    spawner = threading.Thread(target=lambda: channel.send(("m", "1", "2"), b"x\\n"))
    spawner.start(); spawner.join()  # the thread that spawned it is gone
    holder = os.fork()
    if holder == 0:
        time.sleep(120)
        os._exit(0)
    print(channel.process.pid, holder, flush=True)
    time.sleep(120)
    """
)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; its new parent has not reaped it yet


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_replay_process_dies_with_its_parent_though_the_socket_stays_open(
    tmp_path: Path,
) -> None:
    env = {**replay_env(tmp_path), "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], env=env, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    replay, holder = (int(x) for x in parent.stdout.readline().split())
    try:
        time.sleep(1.0)  # past its start: the spawning thread has exited long since
        assert alive(replay), "the replay process must outlive the thread that spawned it"
        parent.kill()
        parent.wait()
        assert alive(holder)  # its end of the pair is still open: no EOF
        assert wait_gone(replay, 10), "the replay process outlived its parent"
    finally:
        for pid in (replay, holder):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
