"""`aiaas serve` on a directory store picks up again, at its start, the batch jobs its last stop
left: the line of jobs is held in memory, so a job still waiting or running when the server
stopped (SIGTERM) read `pending` for good after the next start, until it was submitted again.
Over real HTTP against real `aiaas serve` processes, stopped and started again on one store.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from functions.runtime.store import LocalStore, open_store
from tests.infra.test_serve_capture import ServeUri
from tests.infra.test_serve_job_file_room import JOBS, publish
from tests.infra.test_serve_local_runs import Local, csv_rows

LINED_UP = "lined up again {} batch job(s) left pending when this server last stopped"
# Chunks of 64 rows: ~1 ms each here (4096: 1M rows/s), so a job of 100,000 rows takes ~1.5 s.
SLOW = {"AIAAS_BATCH_CHUNK_ROWS": "64"}


@contextlib.contextmanager
def started(work: Path, env: dict[str, str], *args: str) -> Iterator[Local]:
    """`aiaas serve` on `work`/store (iris published before), INFO lines in its log."""
    store = open_store(str(work / "store"))
    assert isinstance(store, LocalStore)
    server = ServeUri(str(work / "store"), work, {"POWERTOOLS_LOG_LEVEL": "INFO", **env}, *args)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=60) as client:
            yield Local(client, store, work, server)
    finally:
        server.stop()  # SIGTERM, as a supervisor stops it


def store_with_iris(work: Path) -> LocalStore:
    store = open_store(str(work / "store"))
    assert isinstance(store, LocalStore)
    publish(store, work, "iris")
    return store


def temp_files(output: Path) -> list[Path]:
    """A run's half-written objects (`.tmp-*`, not the store's lock files)."""
    return [p for p in output.rglob(".tmp-*") if not p.name.startswith(".tmp-lock-")]


def test_jobs_waiting_or_running_at_a_stop_are_scored_after_the_next_start(
    tmp_path: Path,
) -> None:
    """A big job cut off mid-run by SIGTERM and 4 waiting behind it: after a start they all
    read `succeeded`, in the order they were submitted, each with its own rows, the big one's
    output whole and its cut-off run's temp files gone (before: all 5 `pending` for good)."""
    store = store_with_iris(tmp_path)
    big = csv_rows(200_000)  # ~3 s to score (SLOW): the stop comes mid-run
    source = f"uploads/{uuid.uuid4().hex}.csv"
    store.put_bytes(source, big)
    small = {f"small{i}.csv": 3 + i for i in range(4)}
    output = tmp_path / "store" / "batch" / "iris" / "output"
    with started(tmp_path, {"AIAAS_BATCH_LOCAL_RUNS": "1", **SLOW}) as first:
        jobs = JOBS.format(model="iris")
        copied = first.client.post(jobs, json={"source": source, "file": "big.csv"})
        assert copied.status_code == 202, copied.text
        for file, rows in small.items():
            time.sleep(0.02)  # placed one after another: their times give the order
            assert first.put(file, csv_rows(rows)).status_code == 202
        deadline = time.monotonic() + 30  # big.csv's run has begun writing its output
        while not temp_files(output):
            assert time.monotonic() < deadline, "big.csv's run never began"
            time.sleep(0.01)
        assert first.status("big.csv")["status"] == "pending"
    assert first.server.process.returncode == 0, first.server.output()
    files = ["big.csv", *small]
    assert not [f for f in files if (output / f"{f}.summary.json").exists()], "scored already"
    assert temp_files(output), "the stop left no temp file of the run it cut off"
    with started(tmp_path, {"AIAAS_BATCH_LOCAL_RUNS": "1", **SLOW}) as second:
        done = [second.finished(file, within_s=60) for file in files]
        assert [(job["status"], job["scored_rows"]) for job in done] == [
            ("succeeded", 200_000),
            *[("succeeded", rows) for rows in small.values()],
        ]
        ended = [(tmp_path / "store" / job["summary"]).stat().st_mtime_ns for job in done]
        assert ended == sorted(ended), "a job was scored before one submitted earlier"
        second.logged(LINED_UP.format(5))
        lines = (output / "big.csv").read_bytes().count(b"\n")
        assert lines == 200_001  # the header and every row, once
        assert not temp_files(output)
        assert second.put("after.csv", csv_rows(2)).status_code == 202  # serves on as before
        assert second.finished("after.csv")["scored_rows"] == 2
        log = second.server.log.read_text(errors="replace")
        assert log.count("lined up again") == 1


def drop(store: LocalStore, work: Path, files: dict[str, int]) -> None:
    """Inputs put straight into the input folder, as a user may (no server running), each
    placed a second after the one before it (its time: the order the start takes them in)."""
    now = time.time() - 100
    for i, (file, rows) in enumerate(files.items()):
        store.put_bytes(f"batch/iris/input/{file}", csv_rows(rows))
        path = work / "store" / "batch" / "iris" / "input" / file
        os.utime(path, (now + i, now + i))


def test_jobs_left_past_the_line_s_room_enter_it_as_it_frees_taking_turns_with_submissions(
    tmp_path: Path,
) -> None:
    """5 jobs left, a line of 2 (AIAAS_BATCH_LOCAL_QUEUE) and one run at a time: the 2 oldest
    (by when they were placed, not by name) are lined up at the start and the other 3 enter the
    line as it frees, oldest first (before: they stayed `pending` until the next start, or were
    put again). A job submitted meanwhile, refused (503) while the left jobs fill the line,
    gets the next place that frees, ahead of those still behind the line. A job scored already,
    and a file no run reads, are not taken."""
    store = store_with_iris(tmp_path)
    files = {f"{name}.csv": 20_000 + i for i, name in enumerate("edcba")}  # ~0.4 s each (SLOW)
    drop(store, tmp_path, files)
    store.put_bytes("batch/iris/input/notes.txt", b"not a job")
    env = {"AIAAS_BATCH_LOCAL_QUEUE": "2", "AIAAS_BATCH_LOCAL_RUNS": "1", **SLOW}
    output = tmp_path / "store" / "batch" / "iris" / "output"
    with started(tmp_path, env) as first:
        first.logged(LINED_UP.format(2))
        first.logged(
            "3 more batch job(s) wait behind the line, which holds 2 (AIAAS_BATCH_LOCAL_QUEUE): "
            "they enter it as places free, taking turns with new submissions; the oldest is "
            "batch/iris/input/c.csv"
        )
        refused = 0
        while (answer := first.put("new.csv", csv_rows(3))).status_code == 503:
            assert answer.headers["retry-after"], answer.text
            refused += 1
            assert refused < 1000, "never a place for a new submission"
            time.sleep(0.02)
        assert answer.status_code == 202, answer.text
        done = {file: first.finished(file, within_s=60) for file in [*files, "new.csv"]}
        assert {file: job["scored_rows"] for file, job in done.items()} == {**files, "new.csv": 3}
        assert {job["status"] for job in done.values()} == {"succeeded"}
        ended = sorted(done, key=lambda f: (output / f"{f}.summary.json").stat().st_mtime_ns)
        assert [f for f in ended if f != "new.csv"] == list(files)  # the left ones oldest first
        assert refused >= 1  # it came while the left jobs filled the line
        assert ended.index("new.csv") < ended.index("b.csv"), ended  # took turns with them
        first.logged("the last batch job left by the last stop has its turn")
        log = first.server.log.read_text(errors="replace")
        assert "notes.txt" not in log
    with started(tmp_path, env) as second:  # all were scored by the first start
        time.sleep(1.0)
        log = second.server.log.read_text(errors="replace")
        assert "lined up again" not in log and "wait behind the line" not in log
        assert "were already scored" not in log


def test_with_several_workers_one_lines_the_jobs_up(tmp_path: Path) -> None:
    """`--workers 2`: each worker has a line of its own; one of them lines up the jobs left,
    so each is scored once (two would each score them all: the jobs take seconds, so the other
    worker's control plane starts while they still wait)."""
    store = store_with_iris(tmp_path)
    files = {f"w{i}.csv": 30_000 + i for i in range(6)}  # ~0.5 s each (SLOW)
    drop(store, tmp_path, files)
    with started(tmp_path, SLOW, "--workers", "2") as served:
        done = [served.finished(file) for file in files]
        assert [job["scored_rows"] for job in done] == list(files.values())
        served.logged(LINED_UP.format(6))
        time.sleep(1.0)  # the other worker's warm-up has initialised its control plane
        log = served.server.log.read_text(errors="replace")
        assert log.count("lined up again") == 1
        assert "were already scored" not in log


def test_a_start_with_nothing_left_says_nothing(tmp_path: Path) -> None:
    """Every job scored: the start lines none up and logs no line of it."""
    store_with_iris(tmp_path)
    with started(tmp_path, {}) as first:
        assert first.put("one.csv", csv_rows(4)).status_code == 202
        assert first.finished("one.csv")["scored_rows"] == 4
    with started(tmp_path, {}) as second:
        assert second.status("one.csv")["status"] == "succeeded"
        time.sleep(1.5)  # the control plane's warm-up, then its listing
        assert "lined up again" not in second.server.log.read_text(errors="replace")
