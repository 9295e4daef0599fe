"""A shard worker that does not unwind when the run stops is killed, within a bound.

A worker's stop is a SystemExit raised where the SIGTERM lands, and it can be swallowed there
(a library's `except BaseException`; the pool's own result send is one): the worker then
scored on with stop signals ignored, and the stopped run waited for it (1 CI run of
tests/reliability/test_batch_stopped.py, still going 30 s after the `kill`). Real spawned
processes of the pool the run uses; the deaf worker ignores SIGTERM, as one that swallowed it.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from functions.runtime.batch import shard_pool


def deaf_worker(started: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    Path(started).touch()
    time.sleep(120)


def test_a_worker_that_does_not_unwind_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shard_pool, "UNWIND_S", 1.0, raising=False)
    started = tmp_path / "started"
    executor = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"))
    executor.submit(deaf_worker, str(started))
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline, "the worker did not start within 60 s"
        time.sleep(0.01)
    (process,) = executor._processes.values()  # type: ignore[attr-defined]
    stopping = threading.Thread(target=shard_pool._stop_workers, args=(executor,), daemon=True)
    began = time.monotonic()
    stopping.start()
    stopping.join(15)
    try:
        assert not stopping.is_alive(), "the stop waited for a worker that ignored it"
        assert time.monotonic() - began < 10
        assert not process.is_alive() and process.exitcode == -signal.SIGKILL
    finally:
        if process.is_alive():
            process.kill()
