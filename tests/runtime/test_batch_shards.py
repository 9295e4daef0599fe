"""The shard plan: merged shard outputs are byte for byte a single run's; spans cover every line."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.run import RunInput
from functions.runtime.batch.shard_pool import run_sharded_locally
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.batch.source import ByteRange, line_batches
from functions.runtime.store import LocalStore, ObjectStore
from tests.batch_support import (
    features_csv,
    pool,
    publish_classifier,
    published_store,
    run,
    run_settings,
)

OUT = "batch/iris/output"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


def inputs() -> dict[str, bytes]:
    x = np.random.default_rng(3).normal(size=(60, 4))
    text = features_csv(x).splitlines()
    text[5] = "r4,1,2,oops,4"
    text[9] = ""
    text[30] = "r29,1,2"
    lines = [json.dumps({"id": i, "x": row}) for i, row in enumerate(x.tolist())]
    lines[7] = "{broken"
    lines[40] = ""
    buffer = io.BytesIO()
    data = x.astype(np.float32)
    data[17, 0] = np.nan
    np.save(buffer, data)
    return {
        "s.csv": ("\n".join(text) + "\n").encode(),
        "s.jsonl": "\n".join(lines).encode(),  # no final line break
        "s.npy": buffer.getvalue(),
    }


def outputs(store: ObjectStore, name: str) -> tuple[bytes, bytes]:
    summary = json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))
    return store.get_bytes(summary["output"]), store.get_bytes(summary["errors"])


def sharded(store: ObjectStore, workdir: Path, key: str, shards: int, chunk_rows: int) -> dict:
    """Plan, every shard, merge: the state machine's steps, in this process."""
    obj = parse_input_key(key)
    assert obj is not None
    models = pool(store, workdir)
    run_input = RunInput(obj, "aiaas-local", store.head(key))
    plan = plan_run(store, models, run_input, shards, run_settings(chunk_rows))
    assert plan["status"] == "planned"
    items = json.loads(store.get_bytes(plan["plan_key"]))
    assert [item["index"] for item in items] == list(range(shards))
    for item in reversed(items):  # order of completion must not matter
        score_shard(store, models, item, run_settings())
    return merge_run(store, plan)


@pytest.mark.parametrize("name", ["s.csv", "s.jsonl", "s.npy"])
@pytest.mark.parametrize("shards", [2, 5, 64])
def test_merged_shards_equal_a_single_run(store, tmp_path, name, shards):
    key = f"batch/iris/input/{name}"
    store.put_bytes(key, inputs()[name])
    single = run(store, tmp_path, key, chunk_rows=8)
    expected = outputs(store, name)
    store.delete(f"{OUT}/{name}.summary.json")
    store.delete(single["output"])
    summary = sharded(store, tmp_path, key, shards, chunk_rows=4)
    assert outputs(store, name) == expected
    assert expected[1]  # the inputs have bad rows: their errors merge with global numbers
    for field in ("status", "rows", "scored_rows", "failed_rows", "run_id", "version"):
        assert summary[field] == single[field]
    assert summary["shards"] == shards
    assert list(store.list_keys(f"batch/iris/work/{single['run_id']}")) == []
    assert not (store.root / "batch/iris/work").exists()  # no empty folders left behind


def test_process_pool_runs_the_same_plan(store, tmp_path):
    key = "batch/iris/input/s.csv"
    store.put_bytes(key, inputs()["s.csv"])
    single = run(store, tmp_path, key)
    expected = outputs(store, "s.csv")
    store.delete(f"{OUT}/s.csv.summary.json")
    obj = parse_input_key(key)
    assert obj is not None
    run_input = RunInput(obj, "aiaas-local", store.head(key))
    summary = run_sharded_locally(
        store, pool(store, tmp_path), run_input, 3, run_settings(5), workers=2
    )
    assert (summary["status"], summary["shards"], summary["scored_rows"]) == (
        "succeeded",
        3,
        single["scored_rows"],
    )
    assert outputs(store, "s.csv") == expected


def test_finished_shards_and_runs_are_not_redone(store, tmp_path):
    key = "batch/iris/input/s.csv"
    store.put_bytes(key, inputs()["s.csv"])
    obj = parse_input_key(key)
    assert obj is not None
    models = pool(store, tmp_path)
    plan = plan_run(store, models, RunInput(obj, "aiaas-local", store.head(key)), 2, run_settings())
    item = json.loads(store.get_bytes(plan["plan_key"]))[0]
    first = score_shard(store, models, item, run_settings())
    body = store.get_bytes(f"{plan['work']}/part-00000.body")
    assert score_shard(store, models, item, run_settings()) == first
    assert store.get_bytes(f"{plan['work']}/part-00000.body") == body
    score_shard(store, models, json.loads(store.get_bytes(plan["plan_key"]))[1], run_settings())
    summary = merge_run(store, plan)
    again = merge_run(store, plan)
    assert (again["status"], again["previous_status"]) == ("skipped", "succeeded")
    assert again["finished_at"] == summary["finished_at"]
    replanned = plan_run(
        store, models, RunInput(obj, "aiaas-local", store.head(key)), 2, run_settings()
    )
    assert replanned["status"] == "skipped"


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=6).map(lambda b: b.replace(b"\n", b"")), max_size=12),
    final_break=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=5),
    batch=st.integers(min_value=1, max_value=4),
)
def test_spans_cover_every_line_exactly_once(lines, final_break, cuts, batch):
    data = b"\n".join(lines) + (b"\n" if final_break and lines else b"")
    expected = data.split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    edges = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    seen: list[bytes] = []
    for start, end in itertools.pairwise(edges):
        stream = io.BytesIO(data)
        stream.seek(max(start - 1, 0))
        numbers = []
        for first, batch_lines in line_batches(stream, ByteRange(start, end), batch):
            numbers.append(first)
            seen.extend(batch_lines)
        assert numbers == list(range(1, 1 + batch * len(numbers), batch))
    assert seen == expected


def test_a_sharded_total_counts_from_the_plan_to_the_merge(store, tmp_path):
    """`started_at` is whole seconds: timed from it, total_s came out up to 1 s too long."""
    key = "batch/iris/input/s.csv"
    store.put_bytes(key, inputs()["s.csv"])
    while not 0.5 <= time.time() % 1 < 0.8:  # start where rounding would add 0.5-0.8 s
        time.sleep(0.01)
    began = time.time()
    summary = sharded(store, tmp_path, key, 2, chunk_rows=4)
    took = time.time() - began
    assert summary["started_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))
    assert 0 < summary["timings"]["total_s"] <= took
    assert summary["rows_per_second"] >= summary["rows"] / took


def test_a_shard_of_several_bad_rows_merges_on_s3(s3_store, tmp_path):
    """An S3 body iterates in 1 KiB pieces, not lines: a shard's errors file of two or more
    lines failed the merge ('Extra data'), the Step Functions run with it."""
    publish_classifier(s3_store, tmp_path)
    key = "batch/iris/input/s.csv"
    lines = inputs()["s.csv"].splitlines()
    lines[3] = lines[4] = b"r2,1,2"  # with line 6's: three bad rows in the first shard
    s3_store.put_bytes(key, b"\n".join(lines) + b"\n")
    single = run(s3_store, tmp_path, key, chunk_rows=8)
    expected = outputs(s3_store, "s.csv")
    s3_store.delete(f"{OUT}/s.csv.summary.json")
    summary = sharded(s3_store, tmp_path, key, 2, chunk_rows=4)
    assert (summary["status"], summary["failed_rows"]) == ("succeeded", single["failed_rows"])
    assert outputs(s3_store, "s.csv") == expected and expected[1].count(b"\n") == 4


def test_a_shard_worker_stopped_in_its_atexit_callbacks_says_nothing() -> None:
    """A spawned worker exits through the interpreter's atexit callbacks (logging's shutdown):
    a stop arriving then raised SystemExit inside one, a traceback on the user's terminal
    under "Exception ignored in atexit callback" (once in a fresh-clone CI's Ctrl-C test)."""
    # The stop is sent from a callback registered before the worker's own, so it runs after
    # it, as logging's shutdown does.
    code = (
        "import atexit, os, signal, time\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(0.2)))\n"
        "from functions.runtime.batch.worker_stops import quiet_on_ctrl_c\n"
        "quiet_on_ctrl_c()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_merged_runs_work_folder_goes_in_a_few_requests_on_s3(s3_store, tmp_path):
    """The merge removed a run's work folder one DeleteObject a key: 64 shards' parts were
    130 requests in a row at the end of the run; DeleteObjects takes 1,000 a request."""
    publish_classifier(s3_store, tmp_path)
    key = "batch/iris/input/s.csv"
    s3_store.put_bytes(key, inputs()["s.csv"])
    deletes: list[str] = []

    def called(model, **_):
        deletes.append(model.name)

    events = s3_store.client.meta.events  # the process's shared client: unregistered after
    events.register("before-call.s3.*", called)
    try:
        summary = sharded(s3_store, tmp_path, key, 64, chunk_rows=4)
    finally:
        events.unregister("before-call.s3.*", called)
    assert summary["status"] == "succeeded"
    removed = [name for name in deletes if name.startswith("Delete")]
    assert removed == ["DeleteObjects", "DeleteObjects"]  # the parts, then the plan
    assert not list(s3_store.list_keys("batch/iris/work"))
