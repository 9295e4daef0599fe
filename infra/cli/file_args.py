"""What a command says of a path it was given to read that is not a file: a folder named where
a file goes (`aiaas publish ./model/`) was "no such file", which sent people looking for a
typo in a path that exists. And the extension that picks a local file's format, read as batch
scoring reads a store key's (batch/layout.py lower-cases it): `TRAIN.NPY` was refused by
`aiaas baseline` as "unsupported input format '.npy'" while `aiaas batch` scored it."""

from __future__ import annotations

from pathlib import Path


def not_a_file(path: Path) -> str:
    """`no such file: PATH`, or `PATH is a folder, not a file`."""
    return f"{path} is a folder, not a file" if path.is_dir() else f"no such file: {path}"


def file_suffix(path: Path) -> str:
    """`path`'s extension, lower-cased: `.npy` for `train.NPY` (a Windows export, a camera's
    `.JPG`), compared with the lower-case names of the formats a command reads."""
    return path.suffix.lower()
