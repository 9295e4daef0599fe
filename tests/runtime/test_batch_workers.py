"""Worker processes for big text inputs: the same bytes as one process, failures that fail loud.

The workers are real subprocesses over pipes. Blocks are made tiny here, so that block edges
fall inside lines, chunks and bad rows, and every block's error line numbers must be shifted.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.batch import parallel
from functions.runtime.batch import settings as batch_settings
from functions.runtime.batch.layout import parse_input_key
from functions.runtime.batch.parallel import WorkerFailed, worker_pool
from functions.runtime.batch.run import RunInput, open_run
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.batch.shards import merge_run, plan_run, score_shard
from functions.runtime.batch.source import ByteRange
from functions.runtime.errors import AiaasError
from functions.runtime.model import SMALL_MODEL_BYTES
from functions.runtime.store import LocalStore, ObjectStore
from tests.batch_support import (
    features_csv,
    pool,
    publish_classifier,
    published_store,
    run,
    run_settings,
    two_batch_workers,
)

OUT = "batch/iris/output"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return published_store(tmp_path)


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Two workers for any text input, in blocks of ~300 bytes; started for this test, with
    its environment (a worker keeps the one it started with, as in a Lambda container)."""
    yield from two_batch_workers(monkeypatch)


def inputs() -> dict[str, bytes]:
    x = np.random.default_rng(7).normal(size=(400, 4))
    text = features_csv(x).splitlines()
    text[5] = "r4,1,2,oops,4"
    text[9] = ""
    text[30] = "r29,1,2"
    text[31] = text[31] + "\r"  # a stray CR
    text[200] = "r199,nan,1,2,3"
    lines = [json.dumps({"id": i, "x": row}) for i, row in enumerate(x.tolist())]
    lines[7] = "{broken"
    lines[40] = ""
    lines[300] = json.dumps({"id": 300, "x": [1, 2]})
    crlf = features_csv(x[:150]).replace("\n", "\r\n")
    return {
        "w.csv": ("\n".join(text) + "\n").encode(),
        "w.jsonl": "\n".join(lines).encode(),  # no final line break
        "crlf.csv": crlf.encode(),
    }


def outputs(store: ObjectStore, name: str) -> tuple[bytes, bytes, dict]:
    summary = json.loads(store.get_bytes(f"{OUT}/{name}.summary.json"))
    counts = {k: summary[k] for k in ("status", "rows", "scored_rows", "failed_rows")}
    return store.get_bytes(summary["output"]), store.get_bytes(summary["errors"]), counts


def single_run(store: ObjectStore, tmp_path: Path, name: str, data: bytes) -> tuple:
    key = f"batch/iris/input/{name}"
    store.put_bytes(key, data)
    with pytest.MonkeyPatch.context() as one_process:
        one_process.setenv("AIAAS_BATCH_WORKERS", "1")
        run(store, tmp_path, key, chunk_rows=16)
    found = outputs(store, name)
    for suffix in ("", ".errors.jsonl", ".summary.json"):
        store.delete(f"{OUT}/{name}{suffix}")
    return found


@pytest.mark.parametrize("name", sorted(inputs()))
def test_workers_write_what_one_process_writes(store, tmp_path, workers, name):
    data = inputs()[name]
    expected = single_run(store, tmp_path, name, data)
    assert expected[2]["status"] == "succeeded"
    assert expected[2]["failed_rows"] > 0 or name == "crlf.csv"

    told: list[tuple[int, int]] = []  # what `aiaas batch` shows: each block's rows and bytes
    key = f"batch/iris/input/{name}"
    run(store, tmp_path, key, chunk_rows=16, progress=lambda *block: told.append(block))

    found = outputs(store, name)
    assert found[2] == expected[2]
    assert len(told) > 1 and sum(rows for rows, _ in told) == found[2]["rows"]
    assert sum(read for _, read in told) == store.head(key).size  # its percent of the file
    assert found[1] == expected[1]  # the same error lines, numbered across blocks
    assert found[0] == expected[0]


def test_workers_run_this_code_whatever_package_the_working_directory_holds(
    store, tmp_path, workers, monkeypatch
):
    """`aiaas batch` run in a project with a `functions/` package of its own (a SAM project's
    usual folder, or an aiaas clone older than the installed one): `python -m` put that folder
    first on the workers' path, so they found no `functions.runtime` (exit 1) or, when it
    printed, wrote into their answers' pipe (`MemoryError`): a file of 8 MB or more failed
    where one process scored it (hunt_install 1)."""
    data = inputs()["w.csv"]
    expected = single_run(store, tmp_path, "w.csv", data)
    project = tmp_path / "project"
    (project / "functions").mkdir(parents=True)
    (project / "functions" / "__init__.py").write_text("print('the project own functions')\n")
    monkeypatch.chdir(project)

    run(store, tmp_path, "batch/iris/input/w.csv", chunk_rows=16)

    assert outputs(store, "w.csv") == expected


def test_workers_read_their_blocks_from_s3(s3_store, tmp_path, workers):
    """Each worker opens the store itself: moto's S3 server on loopback, ranged GETs."""
    publish_classifier(s3_store, tmp_path)
    expected = single_run(s3_store, tmp_path, "w.csv", inputs()["w.csv"])

    run(s3_store, tmp_path, "batch/iris/input/w.csv", chunk_rows=16)

    assert outputs(s3_store, "w.csv") == expected


def w_csv(store: ObjectStore, tmp_path: Path) -> tuple[tuple, RunInput]:
    """The single run's outputs of w.csv, and the run input to score it again."""
    expected = single_run(store, tmp_path, "w.csv", inputs()["w.csv"])
    key = "batch/iris/input/w.csv"
    obj = parse_input_key(key)
    assert obj is not None
    return expected, RunInput(obj, "local", store.head(key))


def test_a_shard_scored_by_workers_merges_to_the_single_run(store, tmp_path, workers):
    expected, run_input = w_csv(store, tmp_path)
    models = pool(store, tmp_path)
    plan = plan_run(store, models, run_input, 3, run_settings(16))
    for item in json.loads(store.get_bytes(plan["plan_key"])):
        score_shard(store, models, item, run_settings())
    merge_run(store, plan)
    found = outputs(store, "w.csv")
    assert (found[0], found[1]) == (expected[0], expected[1])
    assert found[2]["rows"] == expected[2]["rows"]


def test_a_dead_worker_fails_the_run_and_the_next_run_starts_afresh(store, tmp_path, workers):
    expected, run_input = w_csv(store, tmp_path)
    opened = open_run(store, pool(store, tmp_path), run_input, "", run_settings(16))
    assert not isinstance(opened, dict)
    _, job = opened
    with worker_pool(2) as workers_now:
        os.kill(workers_now.workers[1].process.pid, signal.SIGKILL)
        workers_now.workers[1].process.wait()
        with pytest.raises(WorkerFailed, match=r"batch worker \d+ exited with status -9"):
            workers_now.score_span(job, ByteRange(0, None), _Sink(), _Sink())
    assert not workers_now.alive

    run(store, tmp_path, run_input.obj.input_key, chunk_rows=16)  # a new pool replaces the dead

    assert parallel._pool is not None and parallel._pool is not workers_now
    found = outputs(store, "w.csv")
    assert (found[0], found[1], found[2]) == expected


def test_a_failed_run_stops_its_workers(workers):
    with pytest.raises(RuntimeError, match="while scoring"), worker_pool(2) as workers_now:
        raise RuntimeError("the caller failed while scoring")
    assert not workers_now.alive and parallel._pool is None


def test_a_closed_pool_leaves_no_pipe_open(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker left its copy of stdout (its answers' pipe) to the garbage collector, and
    the caller its end of that pipe: `PYTHONWARNINGS=default aiaas batch` printed "ResourceWarning:
    unclosed file" three times (py312 hunt)."""
    monkeypatch.setenv("PYTHONWARNINGS", "always::ResourceWarning")  # the workers inherit it
    pool = parallel.WorkerPool(2)
    pool.close()
    assert all(w.requests.closed and w.answers.closed for w in pool.workers)
    assert all(w.process.returncode == 0 for w in pool.workers)
    assert "ResourceWarning" not in capfd.readouterr().err


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def test_worker_count_setting(monkeypatch):
    def workers(size: int, model_bytes: int = 0, **env: str) -> int:
        return BatchSettings.from_env(env).workers_for(size, model_bytes)

    monkeypatch.setattr(batch_settings, "cpu_count", lambda: 2)
    big = batch_settings.PARALLEL_MIN_BYTES
    assert workers(big) == 1  # two CPUs: one process scores as fast, with less memory
    monkeypatch.setattr(batch_settings, "cpu_count", lambda: 6)
    assert workers(big) == 6
    assert workers(big - 1) == 1  # a small input: starting workers is not worth it
    # A big model runs on every CPU by itself, and each worker would hold a copy of it.
    assert workers(big, model_bytes=SMALL_MODEL_BYTES) == 1
    assert workers(big, AIAAS_BATCH_WORKERS="3") == 3
    assert workers(big, SMALL_MODEL_BYTES, AIAAS_BATCH_WORKERS="3") == 3  # asked for: as asked
    assert workers(big, AIAAS_BATCH_WORKERS="1") == 1
    with pytest.raises(AiaasError) as refused:
        workers(big, AIAAS_BATCH_WORKERS="-5")
    # "must be a whole number, got '-5'" read oddly, and 0 quietly meant the default.
    assert refused.value.message == (
        "AIAAS_BATCH_WORKERS must be a whole number, 0 or more (0 or unset: the default); got '-5'"
    )
    assert workers(big, AIAAS_BATCH_WORKERS="0") == 6  # the default, as the message says


def test_workers_import_from_the_callers_own_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker starts with the caller's `sys.path`, not only the package root and PYTHONPATH:
    a host that put a library's folder on `sys.path` (a layer's /opt/python, a custom runtime)
    had its workers fail with "No module named 'botocore'" where one process scored the file."""
    added = tmp_path / "host-libraries"
    added.mkdir()
    monkeypatch.syspath_prepend(str(added))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    pool = parallel.WorkerPool(1)
    try:
        pid = pool.workers[0].process.pid
        # Read between its fork and its exec, a worker's environ is still the caller's (no
        # PYTHONPATH: a StopIteration in CI): read again until the exec has given it its own.
        deadline, path = time.monotonic() + 10, None
        while path is None and time.monotonic() < deadline:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            path = next((v.decode() for v in environ if v.startswith(b"PYTHONPATH=")), None)
            time.sleep(0 if path else 0.01)
        assert path is not None, "the worker started with no PYTHONPATH"
        assert str(added) in path.removeprefix("PYTHONPATH=").split(os.pathsep)
    finally:
        pool.close()
