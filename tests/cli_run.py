"""The aiaas CLI run in process on a store, as the tests of its commands run it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from functions.runtime.store import LocalStore
from infra.cli.main import main


def run(store: LocalStore, *argv: str) -> tuple[int, str, str]:
    """`aiaas --store STORE ARGV...`: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, *argv])
    return code, out.getvalue(), err.getvalue()


def run_joined(store: Path, *argv: str) -> tuple[int, str]:
    """`aiaas --store STORE ARGV...` on a store directory: (exit code, stdout + stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", str(store), *argv])
    return code, out.getvalue() + err.getvalue()
