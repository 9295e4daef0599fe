"""The directory `aiaas serve --workers 2` sums its workers' Prometheus counts in, on a
long-running host: removed under the server (by hand, a /tmp cleaner), aged by a real
systemd-tmpfiles, and left behind by a server killed with SIGKILL. Real servers, real scrapes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import TOKEN, ServeProcess, start_serve
from tests.infra.test_serve_metrics import AUTH, GOOD, scrape, value

JSON_AUTH = {**AUTH, "content-type": "application/json"}
REMOVED = "were removed from"  # the worker's warning when it writes its files back


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store, _ = publish_digits(tmp_path)
    return store


def two_workers(store: Path, *args: str) -> Iterator[ServeProcess]:
    yield from start_serve(
        store, "--workers", "2", *args, env={"AIAAS_API_TOKEN": TOKEN}, headers=AUTH
    )


def workers(server: ServeProcess) -> list[int]:
    pid = server.process.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def open_db_files(pid: int) -> list[Path]:
    """The metrics files a worker has open (prometheus_client keeps them mapped)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            path = Path(os.readlink(fd).removesuffix(" (deleted)"))
        except FileNotFoundError:  # closed meanwhile
            continue
        if re.fullmatch(rf"(counter|histogram|gauge_\w+)_{pid}\.db", path.name):
            found.append(path)
    return found


def shared_dir(server: ServeProcess) -> Path:
    """The workers' directory, wherever the server put it: where their open files are. Once
    every worker has its files open, so each has counts the tests can expect back (a worker
    still starting when the directory goes makes it again: test_serve_metrics_dir_respawn.py)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = workers(server)
        files = [open_db_files(pid) for pid in pids]
        if len(pids) > 1 and all(files):
            return files[0][0].parent
        time.sleep(0.1)
    raise AssertionError(f"no worker has a metrics file open: {server.output()}")


def predict(server: ServeProcess, times: int, path: str = f"/models/{MODEL}/predict") -> set[int]:
    statuses = set()
    for _ in range(times):  # a fresh connection each: both workers answer some
        answer = httpx.post(f"{server.base}{path}", content=GOOD, headers=JSON_AUTH, timeout=30)
        statuses.add(answer.status_code)
    return statuses


def predict_until_both_answer(server: ServeProcess) -> int:
    """Predicts, one connection each, until every worker has its request counter file open
    (it has answered one); how many were sent, at least 8."""
    sent, deadline = 0, time.monotonic() + 30
    while True:
        assert predict(server, 1) == {200}
        sent += 1
        pids = workers(server)
        counting = [p for p in pids if any(f.name.startswith("counter_") for f in open_db_files(p))]
        if sent >= 8 and len(pids) > 1 and len(counting) == len(pids):
            return sent
        assert time.monotonic() < deadline, f"{sent} predicts, counted by {counting} of {pids}"


def answered(server: ServeProcess, status_class: str) -> float:
    requests = scrape(server.base).get("aiaas_requests", [])  # none before the first request
    return value(requests, "aiaas_requests_total", status_class=status_class)


def test_a_directory_removed_while_serving_is_written_back_with_its_counts(store: Path) -> None:
    for server in two_workers(store, "--models", MODEL):
        assert predict(server, 6) == {200}
        directory = shared_dir(server)
        shutil.rmtree(directory)  # what a /tmp cleaner does to it
        # Every scrape a 200 with every count (was a 500 with a traceback until restart).
        assert [answered(server, "2xx") for _ in range(3)] == [6, 6, 6]
        cold = scrape(server.base)["aiaas_cold_starts"]
        assert value(cold, "aiaas_cold_starts_total", model=MODEL) == 2
        assert predict(server, 4) == {200}
        assert answered(server, "2xx") == 10  # later samples are kept too
        assert {f"counter_{pid}.db" for pid in workers(server)} <= {
            f.name for f in directory.glob("*.db")
        }
        log = server.output()
        assert "Traceback" not in log
        # Once per worker, not once per scrape (the second worker's line may not be read yet
        # when every request went to the first: a loaded machine)
        assert 1 <= log.count(REMOVED) <= 2, log


def test_a_directory_that_cannot_be_made_again_answers_what_the_worker_knows(
    store: Path,
) -> None:
    """A file where the directory was: scrapes answer (one worker's counts) and warn once;
    once the path is free again the workers write their files back, every count kept."""
    for server in two_workers(store, "--models", MODEL):
        # Both workers must hold the request series before the directory goes: one that has
        # answered nothing makes its counter file at its first request, which a file in the
        # directory's place refuses (`cannot add a metrics series`: those samples are not
        # counted, as docs/monitoring.md says). Sent until each worker has answered, not 8
        # and hope: a loaded host gave all 8 to one worker and the last 2 to the other (8 != 10).
        sent = predict_until_both_answer(server)
        directory = shared_dir(server)
        had = {path.name for pid in workers(server) for path in open_db_files(pid)}
        shutil.rmtree(directory)
        directory.write_text("not a directory")
        seen = [answered(server, "2xx") for _ in range(6)]
        assert all(0 <= count <= sent for count in seen), seen  # each a 200, a worker's share
        assert predict(server, 2) == {200}
        directory.unlink()
        # Each worker looks for its files every second (metrics_files.KEEP_S) and writes them
        # back whole (renamed into place): all back 0.5-0.8 s later beside two busy loops. A
        # fixed 1.5 s sleep was under 2x the worst a keeper may take (its second, then a
        # loaded host's wake-up); waited for here, then every count must be in them.
        deadline = time.monotonic() + 10
        while not had <= {path.name for path in directory.glob("*.db")}:
            assert time.monotonic() < deadline, f"{sorted(had)} not all back: {server.output()}"
            time.sleep(0.05)
        assert answered(server, "2xx") == sent + 2
        log = server.output()
        assert "Traceback" not in log
        # Once a worker at most, not once a scrape or once a second.
        assert log.count("cannot read the workers' metrics") <= 2, log
        assert 1 <= log.count("cannot write the metrics files of worker") <= 2, log
        # Once a worker that had counts to write back (a loaded machine may send every request
        # to one of the two); 4: one made it again before the file came.
        assert 1 <= log.count(REMOVED) <= 4, log


def test_a_request_needing_a_new_file_after_the_removal_is_answered(tmp_path: Path) -> None:
    """No model loaded, so a worker's first counted request opens its first file: in a
    removed directory that was a 500 for the request itself, not only for /metrics."""
    store = tmp_path / "store"
    store.mkdir()
    for server in two_workers(store):
        assert predict(server, 1, "/no/such/route") == {404}  # one worker has a file now
        shutil.rmtree(shared_dir(server))
        assert predict(server, 12, "/no/such/route") == {404}
        assert answered(server, "4xx") == 13
        assert "Traceback" not in server.output()


def test_systemd_tmpfiles_leaves_a_running_servers_metrics_alone(store: Path) -> None:
    tmpfiles = shutil.which("systemd-tmpfiles")
    if tmpfiles is None:
        pytest.skip("systemd-tmpfiles is not installed")
    for server in two_workers(store, "--models", MODEL):
        assert predict(server, 5) == {200}
        directory = shared_dir(server)
        # Where it lives: the user's cache directory (the tests' AIAAS_CACHE_DIR), not /tmp.
        assert directory.parent == store.parent / "cache" / "metrics"
        before = sorted(f.name for f in directory.glob("*.db"))
        other = directory.parent / "not-a-servers"
        other.mkdir()
        (other / "old").write_text("")
        # Age 0: clean everything under the directory's parent unconditionally (the default
        # /tmp rule does it to what was unused for 10 days).
        config = store.parent / "aiaas-metrics.conf"
        config.write_text(f"e {directory.parent} - - - 0\n")
        subprocess.run([tmpfiles, "--clean", str(config)], check=True, timeout=30)
        assert not other.exists()  # it did clean
        # None of its files went; a worker still finishing its start may have added more.
        after = sorted(f.name for f in directory.glob("*.db"))
        assert set(before) <= set(after), (before, after)
        assert answered(server, "2xx") == 5
        assert REMOVED not in server.output()


def test_the_next_start_removes_a_killed_servers_directory_not_a_live_ones(store: Path) -> None:
    killed = ServeProcess(store, "--workers", "2", "--models", MODEL)
    try:
        killed.wait_ready()
        dead_dir = shared_dir(killed)
        for pid in [killed.process.pid, *workers(killed)]:
            # The OOM killer, `kill -9`: no cleanup ran. A worker may be gone already: it gets
            # SIGKILL itself when its supervisor dies (PR_SET_PDEATHSIG).
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed.process.wait(timeout=10)
    finally:
        killed.stop()
    assert dead_dir.is_dir()
    for live in two_workers(store, "--models", MODEL):
        assert predict(live, 3) == {200}
        live_dir = shared_dir(live)
        for server in two_workers(store, "--models", MODEL):
            assert not dead_dir.exists()
            assert live_dir.is_dir()
            assert shared_dir(server) != live_dir
            assert answered(live, "2xx") == 3
            assert answered(server, "2xx") == 0
        assert live_dir.is_dir()  # the other server stopped: its own directory went, not this
    assert not live_dir.exists()


def test_where_the_metrics_went_is_a_json_line_as_the_functions_write(
    store: Path, tmp_path: Path
) -> None:
    """The one warning serve's own process wrote (the cache directory could not take the
    metrics) was a plain 'WARNING aiaas.gateway: ...' on stderr among the JSON lines."""
    cache = tmp_path / "cache-file"
    cache.write_text("a file where the cache directory should be")
    env = {"AIAAS_API_TOKEN": TOKEN, "AIAAS_CACHE_DIR": str(cache)}
    for server in start_serve(store, "--workers", "2", "--models", MODEL, env=env, headers=AUTH):
        (line,) = [x for x in server.output().splitlines() if "metrics directory is in" in x]
        assert json.loads(line)["level"] == "WARNING", line
