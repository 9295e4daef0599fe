"""The project's own clients of `aiaas serve` take the token from its file too.

An operator who moved serve to AIAAS_API_TOKEN_FILE (and unset AIAAS_API_TOKEN, which serve
refuses beside it) had clients that read only the variable: `aiaas rollout` scraped /metrics
with no token (401 at every check, the rollout aborted) and `python -m infra.call` had no way
to name the file. Each test runs the real serve and the real client command, in processes
of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.client_token import ClientToken
from tests.infra.test_serve import ROOT, ServeProcess, start_serve
from tests.rollout_models import publish

OLD = "tok-old-Qm4r-never-in-logs"
NEW = "tok-new-Zx7p-never-in-logs"
MODEL = "ro"
pytestmark = pytest.mark.xdist_group("token-file-clients")  # one serve for the module


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("token-file-clients")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2", "3"):
        publish(registry, root, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    (root / "tokens").write_text(f"# rotated 2026-12-02\n\n  {OLD}  \n{NEW}\n")
    return root


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ServeProcess]:
    env = {"AIAAS_API_TOKEN_FILE": str(root / "tokens"), "AIAAS_ALIAS_TTL": "3600"}
    yield from start_serve(root / "store", env=env, headers={"Authorization": f"Bearer {OLD}"})


def run(root: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """A client command as an operator runs it, with `env` in place of any token settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_API_TOKEN")}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**clean, **env, "AIAAS_STORE": str(root / "store")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rollout(root: Path, server: ServeProcess, env: dict[str, str], version: str) -> tuple[int, str]:
    """The rollout, while a caller sends requests: a step advances on the version's answers."""
    argv = ["-m", "infra.cli.main", "rollout", MODEL, version, "--steps", "100", "--bake", "1s"]
    argv += ["--min-requests", "1", "--retry-for", "1s", "--metrics", f"{server.base}/metrics"]
    done = threading.Event()

    def call() -> None:
        with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {OLD}"}) as c:
            while not done.wait(0.05):
                c.post(f"/models/{MODEL}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]})

    caller = threading.Thread(target=call)
    caller.start()
    try:
        finished = run(root, env, *argv)
    finally:
        done.set()
        caller.join()
    return finished.returncode, finished.stdout + finished.stderr


def test_rollout_reads_the_metrics_with_the_files_token(root: Path, server: ServeProcess) -> None:
    """Before: `cannot read the gateway's metrics ...: HTTP Error 401`, exit 1, rolled back."""
    code, output = rollout(root, server, {"AIAAS_API_TOKEN_FILE": str(root / "tokens")}, "2")
    assert code == 0, output
    assert Registry(LocalStore(root / "store")).alias_target(MODEL, "production").describe() == "2"  # type: ignore[union-attr]
    assert OLD not in output and NEW not in output


def test_a_token_and_a_file_together_are_refused_as_serve_refuses_them(
    root: Path, server: ServeProcess
) -> None:
    (root / "other").write_text(f"{NEW}\n")
    env = {"AIAAS_API_TOKEN": OLD, "AIAAS_API_TOKEN_FILE": str(root / "other")}
    code, output = rollout(root, server, env, "3")
    assert code == 1
    assert output.splitlines()[-1] == (
        "aiaas rollout: error: both AIAAS_API_TOKEN (or --token) and AIAAS_API_TOKEN_FILE (or "
        "--token-file) are set; set one: the file, to rotate tokens without a restart"
    ), output
    status = run(root, env, "-m", "infra.cli.main", "rollout", "status", MODEL)
    assert status.returncode == 0, status.stderr  # a status or an abort sends no token


def test_a_refused_token_names_where_it_came_from(root: Path, server: ServeProcess) -> None:
    (root / "stale").write_text(f"tok-not-served\n{OLD}\n")  # the first line is the one sent
    code, output = rollout(root, server, {"AIAAS_API_TOKEN_FILE": str(root / "stale")}, "3")
    assert code == 1
    assert output.splitlines()[-1].endswith(
        f"HTTP Error 401: Unauthorized (the gateway refused the token sent (the first token in "
        f"{root / 'stale'}); give one it accepts: set AIAAS_API_TOKEN or AIAAS_API_TOKEN_FILE "
        "(a file of tokens, one a line: its first is sent), or pass --token or --token-file)"
    ), output
    assert "tok-not-served" not in output


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read the API token file {path} (No such file or directory)"),
        ("# the token goes here\n\n", "the API token file {path} holds no token"),
    ],
    ids=["missing", "comments-only"],
)
def test_an_unusable_file_is_refused_before_the_alias_moves(
    root: Path, server: ServeProcess, tmp_path: Path, content: str | None, said: str
) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    code, output = rollout(root, server, {"AIAAS_API_TOKEN_FILE": str(path)}, "3")
    assert code == 1
    assert output.splitlines()[-1].startswith("aiaas rollout: error: " + said.format(path=path))
    assert Registry(LocalStore(root / "store")).alias_target(MODEL, "production").describe() != "3"  # type: ignore[union-attr]


def test_infra_call_sends_the_files_first_token(root: Path, server: ServeProcess) -> None:
    url = f"{server.base}/v2/models/{MODEL}/ready"
    done = run(root, {}, "-m", "infra.call", "GET", url, "--token-file", str(root / "tokens"))
    assert (done.returncode, done.stderr) == (0, "HTTP 200\n")
    (root / "revoked").write_text("tok-not-served\n" + OLD)  # the first line is the one sent
    done = run(root, {}, "-m", "infra.call", "GET", url, "--token-file", str(root / "revoked"))
    assert (done.returncode, done.stderr) == (1, "HTTP 401\n")
    both = run(root, {}, "-m", "infra.call", "GET", url, "--token", OLD, "--token-file", "x")
    assert both.returncode == 2 and "not allowed with argument --token" in both.stderr


def test_a_client_follows_a_rotation_of_the_file(tmp_path: Path) -> None:
    """The rotation serve's docs give: new token added after the old (clients keep sending
    the old), moved first (clients send it), the old removed; a broken file meanwhile keeps
    the token read last. Read before each request, so an hour-long rollout follows it."""
    path = tmp_path / "tokens"
    path.write_text(f"{OLD}\n")
    token = ClientToken.from_settings(None, str(path))
    assert token() == OLD
    path.write_text(f"{OLD}\n{NEW}\n")
    assert token() == OLD
    path.write_text(f"# moved\r\n{NEW}\r\n{OLD}\r\n")
    assert token() == NEW
    path.write_text("")
    assert token() == NEW
    assert token.source() == f"the first token in {path}"
