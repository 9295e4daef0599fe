"""granian's stop asks each worker process whether it is alive once its join returns. Its own
watcher thread also joins the process: when that thread has reaped the worker (waitpid) but not
yet recorded its return code, `Process.is_alive` finds nothing to wait for and answers True, and
the stop "killed worker-1 after it refused to gracefully stop", a worker that had exited (seen
in CI under load with 2 workers). `aiaas serve`'s workers answer by the process's sentinel."""

from __future__ import annotations

import multiprocessing
import os

from infra.local.server import _alive


def _exit() -> None:
    os._exit(0)


def test_a_worker_reaped_by_another_thread_reads_as_exited() -> None:
    process = multiprocessing.get_context("fork").Process(target=_exit)
    process.start()
    os.waitpid(process.pid, 0)  # as granian's watcher thread does, before it sets returncode
    assert process.is_alive()  # multiprocessing's answer: what the stop read
    assert not _alive(process)
    unstarted = multiprocessing.get_context("fork").Process(target=_exit)
    assert not _alive(unstarted)
