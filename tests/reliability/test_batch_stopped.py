"""`aiaas batch` stopped midway by a signal (Ctrl-C, `kill`, `timeout`, a closed terminal) or
failing midway: nothing of the run is left in the store (no upload, temp file, shard part or
multipart upload; no shard worker still scoring), the exit code says what stopped it, and the
same command run again scores every row once.

Each run is the real CLI in its own process group, stopped once it is visibly scoring (a
temp output or a shard part in the store): the directory store and moto's S3 server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from functions.control.jobs import JobBook
from functions.runtime.abandoned import ABANDONED_AFTER_S
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests.batch_support import features_csv, publish_classifier, read_csv

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

ROOT = Path(__file__).resolve().parents[2]
ROWS = 20_000  # at 100 rows a chunk, a run scores for a second or two: time to stop it midway
KEY = "batch/iris/input/big.csv"
OUT = "batch/iris/output/big.csv"


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("input") / "big.csv"
    path.write_text(features_csv(np.random.default_rng(5).normal(size=(ROWS, 4))))
    return path


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (shard workers, multiprocessing's tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def still_running(pids: list[int], within_s: float = 5.0) -> list[str]:
    """The command lines of `pids` still running after `within_s`: multiprocessing's tracker
    exits once it reads the end of its pipe, a moment after the CLI; workers must not linger."""
    deadline = time.monotonic() + within_s
    while (alive := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:200] for pid in alive]


def stop_midway(
    uri: str,
    csv: Path,
    shards: int,
    midway: Callable[[], bool],
    signum: int,
    group: bool,
    chunk_rows: int = 100,
) -> tuple[int, str, list[int]]:
    """Start `aiaas batch`, send `signum` (to its group or to it alone) once `midway()`; its
    exit code, stderr and the children it had then."""
    command = [sys.executable, "-m", "infra.cli.main", "--store", uri, "batch", "iris", str(csv)]
    command += ["--chunk-rows", str(chunk_rows), "--shards", str(shards)]
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
        (os.killpg if group else os.kill)(process.pid, signum)
        stderr = process.communicate(timeout=30)[1].decode()
    finally:  # the whole group, the CLI gone or not: orphaned workers must not outlive a test
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return process.returncode, stderr, kids


def local_midway(root: Path, shards: int) -> Callable[[], bool]:
    """A temp output being written, or (sharded) a shard's part: workers are scoring."""
    folder = root / "batch" / "iris" / ("work" if shards > 1 else "output")
    pattern = "*part-*" if shards > 1 else ".tmp-*"
    return lambda: any(p.is_file() and p.stat().st_size for p in folder.rglob(pattern))


def left_in_local(root: Path) -> list[str]:
    """Files under batch/, the store's lock files (kept by design, hidden) aside."""
    files = (p for p in (root / "batch").rglob("*") if p.is_file())
    return sorted(str(p.relative_to(root)) for p in files if not p.name.startswith(".tmp-lock-"))


def assert_rerun_scores_every_row_once(store: ObjectStore, csv: Path, shards: int) -> None:
    args = ["--store", store.uri, "batch", "iris", str(csv), "--shards", str(shards)]
    assert main([*args, "--chunk-rows", "1000"]) == 0
    assert [row["id"] for row in read_csv(store, OUT)] == [f"r{i}" for i in range(ROWS)]
    assert list(store.list_keys("batch/iris/work")) == []


@pytest.mark.parametrize(
    ("signum", "group", "shards"),
    [
        (signal.SIGTERM, False, 1),  # `kill PID`: a temp upload or output was left
        (signal.SIGTERM, False, 2),  # the shard workers scored on, orphaned
        (signal.SIGINT, True, 2),  # Ctrl-C: the upload was left, unscored
    ],
)
def test_a_local_run_stopped_midway_leaves_nothing_and_reruns(
    tmp_path: Path, big_csv: Path, signum: int, group: bool, shards: int
) -> None:
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    midway = local_midway(store.root, shards)
    code, stderr, kids = stop_midway(store.uri, big_csv, shards, midway, signum, group)

    name = signal.Signals(signum).name
    said = "interrupted" if signum == signal.SIGINT else f"interrupted (stopped by {name})"
    # A run stopped after 2 s has shown its progress (the rows scored as of the stop) first.
    *shown, last = stderr.splitlines()
    assert (code, last) == (128 + signum, f"aiaas batch: {said}")
    assert all(line.startswith("iris batch big.csv: ") for line in shown), shown
    assert still_running(kids) == []  # no worker scores on, orphaned
    assert left_in_local(store.root) == []
    assert_rerun_scores_every_row_once(store, big_csv, shards)


def test_an_s3_run_stopped_midway_leaves_nothing_and_reruns(
    s3_store: S3Store, tmp_path: Path, big_csv: Path
) -> None:
    """On S3 too (a sharded run there was checked once by hand: its workers' start and model
    download make it ~13 s, too slow for CI; its parts go as the directory store's do)."""
    publish_classifier(s3_store, tmp_path)

    def midway() -> bool:  # uploaded: the run has begun (its output spools to /tmp)
        return s3_store.exists(KEY)

    # Chunks of 25 rows: a run of ~5 s, where one of 100-row chunks (~1.5 s) sometimes ended
    # before a poller starved by the other tests' workers saw the upload (exit 0, nothing said).
    code, stderr, kids = stop_midway(
        s3_store.uri, big_csv, 1, midway, signal.SIGTERM, False, chunk_rows=25
    )
    assert stderr, f"exit {code} with nothing said: did the run end before the stop?"
    *shown, last = stderr.splitlines()  # the progress line, if it ran over 2 s, first
    assert (code, last) == (143, "aiaas batch: interrupted (stopped by SIGTERM)")
    assert all(line.startswith("iris batch big.csv: ") for line in shown), shown
    assert still_running(kids) == []
    assert list(s3_store.list_keys("batch")) == []
    uploads = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert uploads.get("Uploads", []) == []
    assert_rerun_scores_every_row_once(s3_store, big_csv, 1)


def test_a_run_failing_midway_removes_its_upload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses the shard plan (a file where the work folder should be): the state
    machine would retry; the CLI fails, and leaves no input that nothing will ever score."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    (store.root / "batch" / "iris").mkdir(parents=True)
    (store.root / "batch" / "iris" / "work").write_text("not a folder")
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))

    args = ["--store", store.uri, "batch", "iris", str(data), "--shards", "2"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("aiaas batch: error: cannot use 'batch/iris/work/") and err.count("\n") == 1
    )
    assert left_in_local(store.root) == ["batch/iris/work"]  # the user's own file, untouched


def test_temp_files_a_killed_run_left_go_with_the_next_run(tmp_path: Path, big_csv: Path) -> None:
    """SIGKILL (an OOM kill) cannot be cleaned up after: its temp output stays until the next
    `aiaas batch` of the model removes the temp files no live writer holds."""
    store = LocalStore(tmp_path / "store")
    publish_classifier(store, tmp_path)
    midway = local_midway(store.root, 1)
    code, _, _ = stop_midway(store.uri, big_csv, 1, midway, signal.SIGKILL, True)
    assert code == -signal.SIGKILL
    temp = [p for p in (store.root / "batch").rglob(".tmp-*") if ".tmp-lock-" not in p.name]
    assert temp, "the kill left no temp file"
    old = time.time() - ABANDONED_AFTER_S - 1  # as if the minute a writer is given had passed
    for path in temp:
        os.utime(path, (old, old))

    assert_rerun_scores_every_row_once(store, big_csv, 1)
    assert [p for p in temp if p.exists()] == []


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_stop_as_the_upload_lands_leaves_nothing(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """A SIGTERM as the upload returns (S3 shows the object before `upload_file` does) came
    before the `try` that removes the upload: the input stayed, and the control plane called
    its job pending for ever. The signal is real, sent to this process at that instant."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    store = (
        LocalStore(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store")
    )
    publish_classifier(store, tmp_path)
    data = tmp_path / "rows.csv"
    data.write_text(features_csv(np.ones((3, 4))))
    real = type(store).upload_file

    def landed_then_stopped(self: ObjectStore, path: Path, key: str) -> None:
        real(self, path, key)  # type: ignore[arg-type]
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(type(store), "upload_file", landed_then_stopped)
    assert main(["--store", store.uri, "batch", "iris", str(data)]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.endswith("aiaas batch: interrupted (stopped by SIGTERM)\n")
    assert list(store.list_keys("batch")) == []


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_rerun_stopped_midway_puts_the_earlier_input_back(
    request: pytest.FixtureRequest, tmp_path: Path, big_csv: Path, where: str
) -> None:
    """A re-run of a name already scored replaces its input; stopped midway, it deleted its
    upload, and with it the only copy of the input the earlier run's output and summary
    describe. That input is now back, byte for byte, and so nothing is left of the re-run;
    with its etag too (a directory store's copy gave it a new one: the job read `pending` for
    ever and a redelivery scored it again)."""
    store: ObjectStore = (
        LocalStore(tmp_path / "store") if where == "local" else request.getfixturevalue("s3_store")
    )
    publish_classifier(store, tmp_path)
    first = tmp_path / "first" / "big.csv"  # the same name, other rows
    first.parent.mkdir()
    first.write_text(features_csv(np.ones((3, 4))))
    assert main(["--store", store.uri, "batch", "iris", str(first)]) == 0
    scored = {key: store.get_bytes(key) for key in store.list_keys("batch")}
    etag = store.head(KEY).etag

    if where == "local":
        midway = local_midway(tmp_path / "store", 1)
    else:  # replaced: the re-run's upload has landed (its output spools to /tmp)
        size = big_csv.stat().st_size

        def midway() -> bool:
            return store.head(KEY).size == size

    code, _, _ = stop_midway(store.uri, big_csv, 1, midway, signal.SIGTERM, False, chunk_rows=25)
    assert code == 143
    assert {key: store.get_bytes(key) for key in store.list_keys("batch")} == scored
    assert store.head(KEY).etag == etag
    job = JobBook(store, Registry(store), None).status("iris", "big.csv")
    assert (job["status"], job["etag"]) == ("succeeded", etag)
