"""A worker of `aiaas serve --workers 2` that starts while the shared metrics directory is gone:
granian starts one again after a worker's crash (`kill -9` here), or a slow host starts one
late. It failed to build its app (its first metrics file had no directory), granian took that
for a crash loop and ended the whole server. Real servers, real kills, real scrapes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ServeProcess
from tests.infra.test_serve_metrics import scrape, value
from tests.infra.test_serve_metrics_dir import (
    answered,
    open_db_files,
    predict,
    shared_dir,
    two_workers,
    workers,
)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    store, _ = publish_digits(tmp_path)
    return store


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """`pid` held still (SIGSTOP): a running worker's keeper would make the directory again
    within a second, before or after the new worker looked for it; now always after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def cold_started(server: ServeProcess) -> Path:
    """The shared directory once every worker counted its model's cold start (its counter's
    file open). `shared_dir` waits for any file: with --workers a worker opens its gauge's
    (aiaas_serve_workers) as it starts, its counter's only once the warm-up loaded the model,
    tenths of a second later and more on a loaded host. Removed meanwhile, the directory
    took the cold start with it (a new series that finds no directory is dropped): the
    worker had no counter file to write back."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = workers(server)
        if len(pids) > 1 and all(counter_open(pid) for pid in pids):
            return shared_dir(server)
        time.sleep(0.05)
    raise AssertionError(f"a worker did not count its cold start: {server.output()}")


def counter_open(pid: int) -> bool:
    return f"counter_{pid}.db" in {p.name for p in open_db_files(pid)}


def respawned(server: ServeProcess, old: list[int], *, counted: bool = True) -> int:
    """The worker granian started in place of a killed one, once it serves: it counted its
    model's cold start in its own file (`counted`), else said it could not."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"the server ended: {server.output()}"
        for pid in set(workers(server)) - set(old):
            if counted and counter_open(pid):
                return pid
            if not counted and f"worker {pid} cannot add a metrics series" in server.output():
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no worker started in place of the killed one: {server.output()}")


def wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not come back"
        time.sleep(0.05)


def test_a_worker_respawned_while_the_directory_is_gone_makes_it_again(store: Path) -> None:
    for server in two_workers(store, "--models", MODEL):
        directory = cold_started(server)
        victim, survivor = old = workers(server)
        with stopped(survivor):
            shutil.rmtree(directory)  # a cleaner, a hand
            os.kill(victim, signal.SIGKILL)  # the OOM killer, a crash: granian starts another
            new = respawned(server, old)
        assert directory.is_dir()
        wait_for(directory / f"counter_{survivor}.db")  # going on, it writes its files back
        assert predict(server, 6) == {200}
        assert answered(server, "2xx") == 6
        samples = scrape(server.base)
        # The survivor's cold start (written back) and the new worker's; the killed one's
        # lived in its own file, which went with the directory.
        assert value(samples["aiaas_cold_starts"], "aiaas_cold_starts_total", model=MODEL) == 2
        assert value(samples["aiaas_serve_workers"], "aiaas_serve_workers") == 2
        names = {f.name for f in directory.glob("*.db")}
        assert {f"counter_{survivor}.db", f"counter_{new}.db"} <= names
        log = server.output()
        assert "Traceback" not in log and "crash loop" not in log, log
        assert f"worker {new} found the metrics directory" in log, log


def test_a_worker_that_cannot_make_it_starts_without_its_metrics(store: Path) -> None:
    """A file where the directory was: the new worker serves, its metrics off (said once),
    scrapes answer; once the path is free the workers' files come back and count again."""
    for server in two_workers(store, "--models", MODEL):
        directory = cold_started(server)
        victim, survivor = old = workers(server)
        shutil.rmtree(directory)
        directory.write_text("not a directory")
        os.kill(victim, signal.SIGKILL)
        new = respawned(server, old, counted=False)
        time.sleep(0.5)  # a crash loop took granian this long to end the server
        assert server.process.poll() is None, server.output()
        assert predict(server, 4) == {200}
        assert 0 <= answered(server, "2xx") <= 4  # a 200: one worker's own counts
        directory.unlink()
        wait_for(directory / f"counter_{survivor}.db")  # it looks for its files every second
        assert predict(server, 6) == {200}
        # The new worker's too, now in the files, and the survivor's share of the first 4.
        assert 6 <= answered(server, "2xx") <= 10
        samples = scrape(server.base)
        assert value(samples["aiaas_serve_workers"], "aiaas_serve_workers") == 2
        assert f"counter_{survivor}.db" in {f.name for f in directory.glob("*.db")}
        log = server.output()
        assert "Traceback" not in log and "crash loop" not in log, log
        assert log.count(f"worker {new} cannot add a metrics series") == 1, log
