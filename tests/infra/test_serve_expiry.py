"""`aiaas serve` on a directory store expires captured requests and drift snapshots as the
stack's bucket rules do on S3 (30 and 90 days by default): a store at the edge kept callers'
captured data, and a drift snapshot a minute per worker, forever."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import textwrap
import time
from pathlib import Path

import pytest

from functions.runtime.store import LocalStore
from infra.cli.arg_types import whole_days
from infra.cli.main import main
from infra.local.expiry import ExpiryTurn, Retention, expire
from tests.infra.test_serve import ServeProcess
from tests.infra.test_serve_capture import ServeUri

TODAY = dt.date(2026, 12, 5)


def _day(store: LocalStore, prefix: str, ago: int, today: dt.date = TODAY) -> str:
    key = f"{prefix}/m/1/{today - dt.timedelta(days=ago)}/000000-a.jsonl"
    store.put_bytes(key, b"{}\n")
    return key


def test_day_folders_past_their_days_go_and_the_rest_stays(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    kept = [_day(store, "capture", 30), _day(store, "monitoring", 90), _day(store, "capture", 0)]
    gone = [_day(store, "capture", 31), _day(store, "monitoring", 91), _day(store, "capture", 400)]
    others = ["capture/m/1/notes/a.txt", "capture/m/capture.json", "models/m/versions/1/x"]
    for key in others:  # no day folder of a capture's: not ours to expire
        store.put_bytes(key, b"")
    assert expire(store, Retention(), TODAY) == 3
    assert sorted(store.list_keys("")) == sorted([*kept, *others])
    assert not (store.root / gone[0]).parent.exists()  # the day's folder is gone too
    assert expire(store, Retention(capture_days=0, monitoring_days=1), TODAY) == 1  # 0: forever
    assert store.exists(kept[0]) and not store.exists(kept[1])


def test_serve_expires_at_start_and_keeps_them_with_0(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    today = dt.datetime.now(dt.UTC).date()
    fresh, old = _day(store, "capture", 1, today), _day(store, "capture", 45, today)
    drift_old = _day(store, "monitoring", 120, today)
    server = ServeProcess(tmp_path / "store", "--capture-days", "0")
    try:
        server.wait_ready()
        assert _gone(store, drift_old) and store.exists(old)  # capture kept: 0 is forever
    finally:
        server.stop()
    server = ServeProcess(tmp_path / "store", "--workers", "2")
    try:
        server.wait_ready()
        assert _gone(store, old) and store.exists(fresh)
    finally:
        server.stop()


# The CLI's main, with each fork's live threads written down (os.register_at_fork: granian's
# supervisor forks its workers through multiprocessing, as Python 3.12+ warns of when threads run).
FORK_WATCH = """
    import os, sys, threading

    def seen():
        with open(os.environ["FORKS_SEEN"], "a") as out:
            out.write(",".join(sorted(t.name for t in threading.enumerate())) + "\\n")

    os.register_at_fork(before=seen)
    from infra.cli.main import main
    sys.exit(main())
"""


def test_serve_workers_fork_before_the_expiry_thread_starts(tmp_path: Path) -> None:
    """`aiaas serve --workers 2` started the expiry thread, then forked its workers: Python
    3.12+ warned "This process ... is multi-threaded, use of fork() may lead to deadlocks in
    the child" at every start (install hunt 2). The workers start it; one expires."""
    forks = tmp_path / "forks.txt"
    _expires_under(tmp_path, FORK_WATCH, "2", {"FORKS_SEEN": str(forks)})
    seen = forks.read_text().splitlines()
    assert len(seen) >= 2 and not any("aiaas-expiry" in threads for threads in seen), seen


# The CLI's main under another start method of multiprocessing's: granian starts its workers
# so, and Python 3.14's default on Linux is forkserver (macOS': spawn), not fork.
START_METHOD = """
    import multiprocessing, os, sys

    if __name__ == "__main__":  # spawn imports this module again in each worker
        multiprocessing.set_start_method(os.environ["START_METHOD"], force=True)
        from infra.cli.main import main
        sys.exit(main())
"""


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_serve_workers_started_without_fork_expire(tmp_path: Path, method: str) -> None:
    """review_revinfra 1: the expiry's turn (an open file) went to the workers in the app's
    settings, which granian pickles where it does not fork: `TypeError: cannot pickle
    '_io.BufferedRandom' object`, and `aiaas serve --workers 2` did not start."""
    output = _expires_under(tmp_path, START_METHOD, "2", {"START_METHOD": method})
    assert "Traceback" not in output


# The CLI's main with no temporary directory to write in, as in a container run read-only
# (`docker run --read-only`, a pod's readOnlyRootFilesystem) with the store on a volume.
NO_TMP = """
    import sys, tempfile

    tempfile.tempdir = "/nonexistent/tmp"  # where tempfile makes its files: none can be made
    from infra.cli.main import main
    sys.exit(main())
"""


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_expires_with_no_temporary_directory(tmp_path: Path, workers: str) -> None:
    """review_revinfra 2: the expiry's turn was a temporary file, made for any directory store:
    `No usable temporary directory found`, a traceback at start, where serve ran before."""
    assert "Traceback" not in _expires_under(tmp_path, NO_TMP, workers, {})


def _hold(turn: ExpiryTurn, log: Path, name: str, seconds: float) -> None:
    turn.wait()
    with log.open("a") as out:
        out.write(f"{name} took\n")
    time.sleep(seconds)
    with log.open("a") as out:
        out.write(f"{name} left\n")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_one_worker_at_a_time_expires_and_another_takes_over_when_it_ends(
    tmp_path: Path, method: str
) -> None:
    turn, log = ExpiryTurn(), tmp_path / "turns.txt"
    fork = multiprocessing.get_context(method)  # spawn: the turn is sent (review_revinfra 1)
    first = fork.Process(target=_hold, args=(turn, log, "first", 1.0))
    first.start()
    deadline = time.monotonic() + 10
    while not (log.exists() and "first took" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.01)
    second = fork.Process(target=_hold, args=(turn, log, "second", 0.0))
    second.start()
    first.join(10)
    second.join(10)
    assert log.read_text().splitlines() == [
        "first took",
        "first left",
        "second took",
        "second left",
    ]


def _expires_under(tmp_path: Path, main: str, workers: str, env: dict[str, str]) -> str:
    """`aiaas serve --workers N` run by the CLI's `main` source (written as a module beside the
    store) expires a 45-day-old capture day: the server's output."""
    store = LocalStore(tmp_path / "store")
    old = _day(store, "capture", 45, dt.datetime.now(dt.UTC).date())
    (tmp_path / "aiaas_main.py").write_text(textwrap.dedent(main))
    env = {"PYTHONPATH": str(tmp_path), **env}
    server = ServeProcess(tmp_path / "store", "--workers", workers, env=env, main="aiaas_main")
    try:
        server.wait_ready()
        assert _gone(store, old)
    finally:
        server.stop()
    return server.output()


def _gone(store: LocalStore, key: str, within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not store.exists(key)


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("-1", "give 0 to 36500 days; got -1"),
        ("36501", "give 0 to 36500 days; got 36501"),
        # Whole days, as S3's lifecycle rules count them: 0.1 kept today and yesterday.
        ("0.1", "give a whole number of days; got 0.1"),
        ("nan", "give a whole number of days; got nan"),
        ("inf", "give a whole number of days; got inf"),
        ("1e9", "give 0 to 36500 days; got 1e9"),
    ],
)
def test_a_days_flag_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], given: str, said: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--store", str(tmp_path / "s"), "serve", "--monitoring-days", given])
    assert stopped.value.code == 2
    assert f"argument --monitoring-days: {said}" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "days"), [("7.0", 7), ("0", 0), (" 30 ", 30), ("1e1", 10)])
def test_a_whole_number_of_days_written_as_a_float_is_taken(given: str, days: int) -> None:
    # `--capture-days 7.0` started a server before days had to be whole; a unit file that says
    # so must still start one after upgrading.
    assert whole_days(given) == days


def test_an_s3_store_says_its_bucket_rules_decide(s3_bucket: str, tmp_path: Path) -> None:
    # On a MinIO at the edge without the stack's rules the flag was taken without a word, and
    # captures were kept for ever by a user who believed 7 days.
    uri = f"s3://{s3_bucket}/registry"
    server = ServeUri(uri, tmp_path, {}, "--capture-days", "7")
    try:
        server.wait_ready()
        assert (
            f"note: --capture-days applies to a directory store; {uri} expires objects by its "
            "bucket's lifecycle rules" in server.output()
        )
    finally:
        server.stop()
    server = ServeUri(uri, tmp_path, {})  # not given: nothing to say
    try:
        server.wait_ready()
        assert "lifecycle" not in server.output()
    finally:
        server.stop()
