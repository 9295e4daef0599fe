"""AIAAS_MAX_RUN_SECONDS's watcher (functions/runtime/run_deadline.py) over real onnxruntime
sessions: its per-thread run options outlive no thread. `aiaas serve` turns it on for every
function (its Timeout), and the batch function scores each job on a thread of its own: each
left a slot (run options the watcher walks every period) for the server's life."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from functions.runtime import run_deadline
from tests import onnx_factory


def test_a_finished_thread_s_run_options_are_dropped(tmp_path: Path) -> None:
    session = ort.InferenceSession(str(onnx_factory.identity(tmp_path / "identity.onnx")))
    run = run_deadline.watched(session.run, 0.2, "identity:1")  # a 0.05 s watcher period
    feed = {session.get_inputs()[0].name: np.ones((1, 3), np.float32)}
    run(["y"], feed, ort.RunOptions())  # this thread's slot, and the watcher started
    before = len(run_deadline._WATCHER.slots)
    for _ in range(20):  # one scoring thread a batch job, as functions/runtime/batch/job.py
        thread = threading.Thread(target=run, args=(["y"], feed, ort.RunOptions()))
        thread.start()
        thread.join()
    time.sleep(0.2)  # a few watcher periods
    assert len(run_deadline._WATCHER.slots) <= before
    assert run(["y"], feed, ort.RunOptions())[0].tolist() == [[1.0, 1.0, 1.0]]
