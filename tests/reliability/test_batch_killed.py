"""A batch run killed mid-file (SIGKILL, as a Lambda timeout or an OOM kill ends it), then run
again for the same input: the output is complete, correct, and has no duplicate rows.

The first run is `aiaas batch` in its own process group, killed once partial output is on disk;
the re-run is what the queue's re-delivery does: the same object version scored again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shard_pool import run_sharded_locally
from functions.runtime.store import LocalStore
from tests.batch_support import (
    features_csv,
    pool,
    publish_classifier,
    read_csv,
    reference_logits,
    run,
    run_settings,
)

ROOT = Path(__file__).resolve().parents[2]
ROWS = 60_000
KEY = "batch/iris/input/big.csv"
OUT = "batch/iris/output/big.csv"


def partial_files(store: Path) -> list[Path]:
    """Unpublished writes in progress (the stores' temp files) and finished shard parts."""
    written = [store / "batch" / "iris" / folder for folder in ("output", "work")]
    found = [p for d in written for p in d.rglob(".tmp-*") if p.stat().st_size > 0]
    return found + [p for d in written for p in d.rglob("part-*") if p.is_file()]


def start_and_kill(store: Path, csv: Path, shards: int) -> list[Path]:
    """Start `aiaas batch`, SIGKILL its whole process group once partial output exists."""
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(store), "batch", "iris"]
    command += [str(csv), "--chunk-rows", "100", "--shards", str(shards)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: shard workers die with it
    )
    deadline = time.monotonic() + 90
    try:
        while not (found := partial_files(store)):
            assert process.poll() is None, process.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no partial output within 90 s"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    return found


@pytest.mark.parametrize("shards", [1, 2])
def test_killed_run_then_rerun_is_complete_correct_and_without_duplicates(
    tmp_path: Path, shards: int
) -> None:
    store_dir = tmp_path / "store"
    store = LocalStore(store_dir)
    publish_classifier(store, tmp_path)
    x = np.random.default_rng(3).normal(size=(ROWS, 4)).astype(np.float32)
    csv = tmp_path / "big.csv"
    csv.write_text(features_csv(x))

    partial = start_and_kill(store_dir, csv, shards)
    assert partial, "the kill came before any output was written"
    # Killed mid-file: nothing is published, so nothing half-written is visible.
    assert not store.exists(OUT) and not store.exists(f"{OUT}.summary.json")
    assert [k for k in store.list_keys("batch/iris/output")] == []

    if shards == 1:
        summary = run(store, tmp_path, KEY)
    else:
        obj = parse_input_key(KEY)
        assert obj is not None
        rerun = RunInput(obj, "local", store.head(KEY))
        summary = run_sharded_locally(
            store, pool(store, tmp_path), rerun, shards, run_settings(), workers=2
        )
    assert (summary["status"], summary["rows"], summary["scored_rows"]) == (
        "succeeded",
        ROWS,
        ROWS,
    )
    rows = read_csv(store, OUT)
    assert [r["id"] for r in rows] == [f"r{i}" for i in range(ROWS)]  # all, in order, once
    logits = np.array([[float(r[f"pred_logits_{i}"]) for i in range(3)] for r in rows])
    np.testing.assert_allclose(logits, reference_logits(tmp_path, x), rtol=1e-6, atol=1e-6)
    assert store.get_bytes(f"{OUT}.errors.jsonl") == b""
