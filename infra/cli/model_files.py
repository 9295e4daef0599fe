"""A model file and the external data files it names, placed in a private folder to work on.

Publishing never writes into the user's model folder: it may be read-only, shared, or watched
by another tool. Yet onnxruntime's quantizers write a shape-inferred copy of the graph beside
their input, and the signature read of a big single file writes its graph file beside the model
(`mapped_weights`). So every step of `aiaas publish` runs on the files `stage` places in the
publish's own temporary folder, which is removed on success, error and interrupt.

External data is named inside the model relative to its folder, so each data file keeps its
name there. Files are hard-linked where they can be (the same file system; they are only read),
else copied. Symbolic links are followed: a Hugging Face cache links each file to a blob in
another folder, which onnxruntime refuses as a path escaping the model's folder, so the target
is placed. The `onnx` package (>= 1.17) refuses to read an external data file with more than
one link, a guard against hardlink attacks; the quantizers read with it, and so does
onnxruntime for a subgraph's weights, so their input's data files are copies (`copy_data`,
and for a model with such weights): a reflink where the file system shares extents (XFS, btrfs:
instant), else the bytes (about 1 s per GB on this machine's ext4 disk).
"""

from __future__ import annotations

import mmap
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from functions.runtime.artifact_files import (
    external_data_names,
    files_to_publish,
    nested_external_data,
    short_data_file,
)
from functions.runtime.errors import BadRequest
from functions.runtime.file_hashes import sha256_file
from infra.cli.file_args import not_readable

FICLONE = 0x40049409  # linux/fs.h: the copy shares the source's extents


def data_files(model: Path) -> dict[str, Path]:
    """The external data files `model` names, by name; a BadRequest naming a missing one."""
    return {name: local for name, (local, _) in files_to_publish(model, {}).items()}


def require_data_files(model: Path) -> None:
    """A BadRequest naming a missing or truncated external data file of `model`; a file that is not ONNX at
    all is left to onnxruntime's load to describe."""
    try:
        external_data_names(model)
    except BadRequest:
        return
    for name, local in data_files(model).items():
        problem = not_readable(local)  # was onnxruntime's "SystemError : 13" (not ONNX)
        if problem is not None:
            raise BadRequest(
                f"{model} keeps weights in external data file {name!r}: {problem.line}"
            )
    short_data_file(model)  # a truncated data file, named before onnxruntime fails on it


def total_bytes(model: Path) -> int:
    """The bytes of `model` and all its data files: what a version of it stores and loads."""
    return model.stat().st_size + sum(p.stat().st_size for p in data_files(model).values())


def stage(model: Path, folder: Path, *, copy_data: bool = False) -> Path:
    """`model` and its data files placed in the new folder `folder` under their own names; the
    placed model. `copy_data`: the data files are copies, never links (the `onnx` package will
    read them)."""
    folder.mkdir(parents=True)
    placed = folder / model.name
    _place(model, placed, copy=False)
    place_data_files(model, placed, copy_data=copy_data or _checked_by_onnx(model))
    return placed


def _checked_by_onnx(model: Path) -> bool:
    """Whether onnxruntime's load of `model` reads data files through the `onnx` package's
    checks (a subgraph's external weights), which refuse a hard link: publish refused an If
    model onnxruntime loads ("potential hardlink attack")."""
    try:
        with (
            model.open("rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf,
        ):
            return bool(nested_external_data(buf))
    except (OSError, ValueError):  # empty, unreadable: onnxruntime's load says what it is
        return False


def place_data_files(source: Path, copy: Path, *, copy_data: bool = False) -> None:
    """Make `source`'s data files appear beside `copy` (a copy of its model file)."""
    for name, local in data_files(source).items():
        placed = copy.parent / name
        placed.parent.mkdir(parents=True, exist_ok=True)
        _place(local, placed, copy=copy_data)


def _place(source: Path, target: Path, *, copy: bool) -> None:
    if not copy:
        try:
            # The file a symbolic link names (os.link on Linux would link the link itself).
            os.link(source.resolve(), target)
            return
        except OSError:  # another file system, or one without hard links (or not allowed)
            pass
    try:
        copy_file(source, target)
    except OSError as exc:  # a full disk, most likely
        raise BadRequest(
            f"cannot copy {source} to {target.parent} to work on it ({exc.strerror or exc}): "
            "free space there, or set TMPDIR to a folder with room on the model's file system "
            "(files there are linked, not copied)"
        ) from None


def copy_file(source: Path, target: Path) -> None:
    """A new file `target` holding `source`'s bytes: a reflink where the file system can make
    one, else a copy."""
    with source.open("rb") as src, target.open("xb") as dst:
        if sys.platform == "linux":
            import fcntl

            try:
                fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
                return
            except OSError:  # ext4, tmpfs, another file system: no shared extents
                pass
    shutil.copyfile(source, target)  # the kernel copies (sendfile), into the file made above


def describe_data_files(model: Path) -> list[dict[str, Any]]:
    """Each data file of `model` as a manifest records a source: name, size, sha256."""
    return [
        {"file": name, "size": local.stat().st_size, "sha256": sha256_file(local)}
        for name, local in data_files(model).items()
    ]
