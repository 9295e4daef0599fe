"""What a command says of a path it was given to read that is not a file: a folder named where
a file goes (`aiaas publish ./model/`) was "no such file", which sent people looking for a
typo in a path that exists."""

from __future__ import annotations

from pathlib import Path


def not_a_file(path: Path) -> str:
    """`no such file: PATH`, or `PATH is a folder, not a file`."""
    return f"{path} is a folder, not a file" if path.is_dir() else f"no such file: {path}"
