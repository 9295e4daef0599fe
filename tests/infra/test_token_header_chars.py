"""A token in AIAAS_API_TOKEN or --token that no HTTP client can send is refused at start.

`AIAAS_API_TOKEN=tök aiaas serve` said "bearer token required" and answered every caller 401
(its UTF-8 or Latin-1 bytes alike); `--token $'tok\\x01'` got granian's bare 400 with an empty
body. The same token in AIAAS_API_TOKEN_FILE was refused at start, with the line's number: the
variable and the flag now follow the file's rule (printable ASCII, no space), and so do the
clients that send the token (`aiaas rollout`, `python -m infra.call`). The token is never
echoed. Each test runs the real command in a process of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.infra.test_cli_rollout import closed_port, two_versions
from tests.infra.test_serve import ROOT, ServeProcess

UNSENDABLE = (
    "AIAAS_API_TOKEN (or --token) holds a character an HTTP header cannot carry (a control "
    "character, a tab or non-ASCII); set it to the token callers send, in printable ASCII with "
    "no spaces, or unset it to "
)
SPACED = (
    "AIAAS_API_TOKEN (or --token) holds a space, which a bearer token cannot (RFC 6750); set "
    "it to the token callers send, in printable ASCII with no spaces, or unset it to "
)


@pytest.mark.parametrize(
    ("env", "args", "said"),
    [
        ({"AIAAS_API_TOKEN": "sëcret-Qm4r"}, (), UNSENDABLE),  # was 401 for every caller
        ({}, ("--token", "sec\x01ret-Qm4r"), UNSENDABLE),  # was granian's bare 400
        ({"AIAAS_API_TOKEN": "sec\tret-Qm4r"}, (), UNSENDABLE),
        ({"AIAAS_API_TOKEN": "sec ret-Qm4r"}, (), SPACED),  # as the file refuses it
    ],
    ids=["non-ascii", "control-flag", "tab", "inner-space"],
)
def test_serve_refuses_a_token_no_caller_can_send(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], said: str
) -> None:
    server = ServeProcess(tmp_path / "store", *args, env=env)
    try:
        code = server.process.wait(timeout=30)
    finally:
        server.stop()
    output = server.output()
    assert code == 1, output
    assert f"aiaas serve: error: {said}serve without auth" in output, output
    assert "ret-Qm4r" not in output  # never the token
    assert "http://" not in output  # nothing was served


def client(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """A client command as an operator runs it, with `env` its only token settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIAAS_API_TOKEN")}
    return subprocess.run(
        [sys.executable, *argv],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_rollout_refuses_the_token_before_the_alias_moves(tmp_path: Path) -> None:
    store, _ = two_versions(tmp_path)
    metrics = f"http://127.0.0.1:{closed_port()}/metrics"
    argv = ["-m", "infra.cli.main", "--store", str(store), "rollout", "ro", "2"]
    done = client({"AIAAS_API_TOKEN": "sëcret-Qm4r"}, *argv, "--metrics", metrics)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1] == f"aiaas rollout: error: {UNSENDABLE}send no token"
    assert "ret-Qm4r" not in done.stdout + done.stderr
    assert Registry(LocalStore(store)).alias_target("ro", "production").describe() == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize("token", ["sec\x01ret-Qm4r", "sëcret-Qm4r", "sec ret-Qm4r"])
def test_infra_call_refuses_a_token_it_cannot_send(token: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v2/health/ready"
    done = client({}, "-m", "infra.call", "GET", url, "--token", token)
    problem = UNSENDABLE if " " not in token else SPACED
    problem = problem.split(";")[0].removeprefix("AIAAS_API_TOKEN (or --token) ")
    assert (done.returncode, done.stderr) == (
        2,
        f"python -m infra.call: error: --token {problem}; pass the token as it was issued\n",
    )
