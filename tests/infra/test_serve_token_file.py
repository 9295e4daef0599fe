"""Rotating `aiaas serve`'s bearer token with no restart: AIAAS_API_TOKEN_FILE, re-read on change.

Each test runs the real `aiaas serve` and asks it over HTTP (httpx, a fresh connection per
request, so with `--workers 2` both workers answer). The file is written as kubelet updates a
Secret volume: a new directory, the `..data` symlink swapped to it by a rename, the key a link
through `..data`, the old directory removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from infra.local.token_file import read_tokens
from tests.functions.test_predict_events import MODEL, publish_digits
from tests.infra.test_serve import ROOT, ServeProcess, start_serve
from tests.s3server import free_port

OLD = "tok-old-Qm4r-never-in-logs"
NEW = "tok-new-Zx7p-never-in-logs"
PICKUP_S = 3.0  # the re-read period is 1 s; this is its bound with a loaded CI machine's slack


def kubelet_write(volume: Path, text: str) -> Path:
    """Update `volume` as kubelet does a Secret's, atomically; the path a pod reads: `token`."""
    previous = (volume / "..data").resolve() if (volume / "..data").exists() else None
    fresh = volume / f"..{time.monotonic_ns()}"
    fresh.mkdir()
    (fresh / "token").write_text(text)
    (volume / "..data_tmp").symlink_to(fresh.name)
    os.replace(volume / "..data_tmp", volume / "..data")
    if not (volume / "token").is_symlink():
        (volume / "token").symlink_to("..data/token")
    if previous is not None:
        shutil.rmtree(previous)
    return volume / "token"


def status(server: ServeProcess, token: str, path: str = "/v2/health/live") -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{server.base}{path}", headers=headers, timeout=10).status_code


def statuses(server: ServeProcess, token: str, times: int = 8) -> set[int]:
    """What `times` fresh connections get: a set of one status when every worker agrees."""
    return {status(server, token) for _ in range(times)}


def within(seconds: float, settled: Callable[[], bool]) -> float:
    """Seconds until `settled()` holds; fails past `seconds`."""
    start = time.monotonic()
    while not settled():
        assert time.monotonic() - start < seconds, "not picked up in time"
        time.sleep(0.1)
    return time.monotonic() - start


def test_a_file_holds_a_token_a_line(tmp_path: Path) -> None:
    """Comments, blank lines, CRLF (a file from Windows) and the spaces around a line are no
    part of a token; a repeat is one token."""
    path = tmp_path / "tokens"
    path.write_bytes(f"# rotated 2026-12-02\r\n\r\n  {OLD}  \r\n{NEW}\n{OLD}\n#{OLD}".encode())
    assert read_tokens(path) == (OLD, NEW)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return publish_digits(tmp_path_factory.mktemp("token-file"))[0]


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    (tmp_path / "secret").mkdir()
    return tmp_path / "secret"


@contextlib.contextmanager
def serving(store: Path, token_file: Path, token: str, *args: str) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN_FILE": str(token_file), "POWERTOOLS_LOG_LEVEL": "INFO"}
    yield from start_serve(store, *args, env=env, headers={"Authorization": f"Bearer {token}"})


def test_a_kubelet_swap_rotates_the_token_in_every_worker(store: Path, volume: Path) -> None:
    """The rotation a 30-day policy runs: add the new token, callers move, remove the old."""
    path = kubelet_write(volume, f"# rotated 2026-12-02\n{OLD}\n")
    with serving(store, path, OLD, "--workers", "2") as server:
        assert (statuses(server, OLD), statuses(server, NEW)) == ({200}, {401})
        kubelet_write(volume, f"{OLD}\n\n{NEW}\n")  # the overlap: both accepted everywhere
        within(PICKUP_S, lambda: statuses(server, NEW) == {200})
        assert statuses(server, OLD) == {200}
        assert status(server, NEW, "/metrics") == 200  # every route takes every token
        assert status(server, NEW, f"/v2/models/{MODEL}/ready") == 200
        kubelet_write(volume, f"{NEW}\n")  # the old one removed: refused within the period
        within(PICKUP_S, lambda: statuses(server, OLD) == {401})
        assert statuses(server, NEW) == {200}
        log = server.output()
    assert log.count("2 tokens now accepted") == 2, log  # one line a worker
    assert log.count("1 token now accepted") == 2, log
    assert OLD not in log and NEW not in log


def test_a_broken_file_keeps_the_last_good_set(store: Path, tmp_path: Path) -> None:
    """Empty, gone, or garbled after the start: the tokens read last stay, never an open
    server nor one that locks everyone out; the next good file is taken."""
    path = tmp_path / "tokens"
    path.write_text(f"{OLD}\n")
    with serving(store, path, OLD) as server:
        path.write_text("# nothing yet\n\n")
        within(PICKUP_S, lambda: "holds no token" in server.output())
        assert (status(server, OLD), status(server, "not-a-token")) == (200, 401)
        path.unlink()
        within(PICKUP_S, lambda: "cannot read the API token file" in server.output())
        path.write_bytes(b"\xff\xfe")  # not UTF-8
        within(PICKUP_S, lambda: server.output().count("cannot read the API token file") == 2)
        assert (status(server, OLD), status(server, NEW)) == (200, 401)
        path.write_text(f"{NEW}\n")
        within(PICKUP_S, lambda: status(server, NEW) == 200)
        assert status(server, OLD) == 401
        log = server.output()
    assert "still accepting the 1 token read before" in log
    assert OLD not in log and NEW not in log


def test_a_worker_respawned_while_the_file_is_broken_accepts_no_revoked_token(
    store: Path, tmp_path: Path
) -> None:
    """A respawned worker (granian starts one for a worker the OOM killer took) had only the
    set read at the serve's start; with the file broken then, it accepted a token the operator
    had since removed, its siblings refusing it."""
    path = tmp_path / "tokens"
    path.write_text(f"{OLD}\n")
    with serving(store, path, OLD, "--workers", "2") as server:
        path.write_text(f"{NEW}\n")  # OLD revoked
        within(PICKUP_S, lambda: statuses(server, OLD) == {401})
        path.write_text("# being rewritten\n")  # then broken, as the worker dies
        within(PICKUP_S, lambda: server.output().count("holds no token") == 2)  # each worker
        pid = server.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children")
        before = set(children.read_text().split())
        os.kill(int(sorted(before)[0]), signal.SIGKILL)
        within(30, lambda: len(set(children.read_text().split()) - before) == 1)
        within(30, lambda: server.output().count("holds no token") == 3)  # the new one read it
        assert statuses(server, OLD, times=12) == {401}  # before: 200 from the new worker
        assert "accepts no token until it can read it again" in server.output()
        assert statuses(server, NEW, times=12) <= {200, 401}  # the sibling keeps NEW
        path.write_text(f"{NEW}\n")
        within(PICKUP_S, lambda: statuses(server, NEW) == {200})
        assert statuses(server, OLD) == {401}


def refused_start(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """stderr of a serve that must refuse to start (exit 1, nothing served)."""
    store = tmp_path / "store"
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(store), "serve"]
    command += ["--port", str(free_port()), *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_API_TOKEN")}
    done = subprocess.run(
        command, cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1, done
    assert "http://" not in done.stdout
    return done.stderr


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read the API token file {path} (No such file or directory)"),
        ("", "the API token file {path} holds no token"),
        ("# the token goes here\n\n   \n", "the API token file {path} holds no token"),
    ],
    ids=["missing", "empty", "comments-only"],
)
def test_an_unusable_file_refuses_to_start(tmp_path: Path, content: str | None, said: str) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    stderr = refused_start(tmp_path, {"AIAAS_API_TOKEN_FILE": str(path)})
    assert stderr.startswith("aiaas serve: error: " + said.format(path=path)), stderr


def test_a_token_and_a_file_together_refuse_to_start(tmp_path: Path) -> None:
    """Which would rule? Serving either could leave a door open the operator meant shut."""
    (tmp_path / "tokens").write_text(f"{NEW}\n")
    env = {"AIAAS_API_TOKEN": OLD, "AIAAS_API_TOKEN_FILE": str(tmp_path / "tokens")}
    assert refused_start(tmp_path, env) == (
        "aiaas serve: error: both AIAAS_API_TOKEN (or --token) and AIAAS_API_TOKEN_FILE (or "
        "--token-file) are set; set one: the file, to rotate tokens without a restart\n"
    )
    empty = refused_start(tmp_path, {"AIAAS_API_TOKEN_FILE": ""})
    assert "AIAAS_API_TOKEN_FILE (or --token-file) is set but empty" in empty
