"""A real full disk for tests: a small tmpfs with every block taken (mounting needs root and
CAP_SYS_ADMIN, as on this project's machines; elsewhere the test is skipped, saying so)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpdir(folder: Path, size: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """`folder`, a tmpfs of `size` that `tempfile` uses as TMPDIR for the test."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a {size} tmpfs takes root (CAP_SYS_ADMIN)")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # what TMPDIR sets
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def full_tmpfs(
    root: Path, size: str = "64k", before: Callable[[Path], object] | None = None
) -> Iterator[Path]:
    """`root`, a tmpfs of `size` filled up (after `before(root)` wrote what the test needs)."""
    root.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        if before is not None:
            before(root)
        filler = os.open(root / ".filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except OSError:  # ENOSPC: full
            pass
        finally:
            os.close(filler)
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
