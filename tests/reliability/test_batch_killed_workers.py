"""`aiaas batch --shards N` SIGKILLed alone (an OOM kill, `timeout -s KILL` of the CLI's pid,
not its group) cannot stop its shard workers: they must go by themselves. They waited for
their next shard for ever, each holding its model (~130 MB a worker), after every such kill.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.batch_support import features_csv, publish_classifier
from tests.reliability.test_batch_stopped import (
    ROOT,
    ROWS,
    assert_rerun_scores_every_row_once,
    children,
    local_midway,
    still_running,
)


@pytest.fixture
def big_csv(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    path.write_text(features_csv(np.random.default_rng(5).normal(size=(ROWS, 4))))
    return path


def test_shard_workers_go_when_their_cli_is_sigkilled(tmp_path: Path, big_csv: Path) -> None:
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    midway = local_midway(store.root, 2)
    command = [sys.executable, "-m", "infra.cli.main", "--store", store.uri, "batch", "iris"]
    command += [str(big_csv), "--chunk-rows", "100", "--shards", "2"]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    try:
        while not midway():
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "the run was not seen scoring within 60 s"
            time.sleep(0.01)
        kids = children(process.pid)
        os.kill(process.pid, signal.SIGKILL)  # the CLI alone: its workers are not told
        process.wait(30)
        assert len(kids) >= 2  # the shard workers (and multiprocessing's tracker)
        assert still_running(kids, within_s=10) == []
    finally:  # its group: orphaned workers must not outlive the test, whatever it found
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert_rerun_scores_every_row_once(store, big_csv, 2)
