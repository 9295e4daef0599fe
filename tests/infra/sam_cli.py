"""The SAM CLI as a user runs it, for the template and deploy tests.

`sam` lives in its own venv (it pins boto3/pydantic below ours): `AIAAS_SAM_CLI`, else
`.venv-sam/bin/sam` in the project, else `sam` on PATH. `sam build` installs the arm64 wheels
with python3.12's pip, so python3.12 must be on PATH; pyenv's `~/.pyenv/versions/3.12*` is
added when it is not (CI machines and this one have it there).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_REASON = (
    "the SAM CLI is not installed: it pins boto3/pydantic below this venv's, so it lives in its "
    "own venv (`make sam-cli` creates .venv-sam, or set AIAAS_SAM_CLI=/path/to/sam)"
)


def sam_cli() -> str | None:
    local = ROOT / ".venv-sam" / "bin" / "sam"
    return (
        os.environ.get("AIAAS_SAM_CLI")
        or (str(local) if local.exists() else None)
        or shutil.which("sam")
        or shutil.which("sam", path=str(Path(sys.executable).parent))
    )


def python312_dir() -> Path:
    """The directory of a working python3.12 for `sam build`: pyenv's, else PATH's (a pyenv
    shim on PATH may point at no 3.12 at all, so each candidate is run once)."""
    candidates = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"), reverse=True)
    on_path = shutil.which("python3.12")
    for candidate in [*candidates, *([Path(on_path)] if on_path else [])]:
        if _runs(candidate):
            return candidate.parent
    raise RuntimeError(
        "sam build needs python3.12 (Lambda's runtime): put it on PATH or install it with "
        "`pyenv install 3.12`"
    )


def _runs(python: Path) -> bool:
    try:
        done = subprocess.run([str(python), "-c", "pass"], capture_output=True, timeout=30)
    except OSError:
        return False
    return done.returncode == 0


@dataclass(frozen=True)
class Sam:
    """Runs `sam ...` in the project root with AWS pointed at `endpoint` (moto), no telemetry."""

    endpoint: str | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "PATH": f"{python312_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
            # The tests move XDG_CACHE_HOME to a temp dir; keep pip's wheel cache across runs.
            "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
        }
        if self.endpoint:
            env["AWS_ENDPOINT_URL"] = self.endpoint
        return env

    def run(self, *args: str, timeout: float = 600, env: Mapping[str, str] | None = None) -> str:
        """stdout + stderr of a successful run; a failure raises with both."""
        cli = sam_cli()
        assert cli is not None, SKIP_REASON
        done = subprocess.run(
            [cli, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**self.env(), **(env or {})},
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"sam {' '.join(args)} failed:\n{output[-4000:]}"
        return output
