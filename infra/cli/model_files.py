"""A model file and the external data files it names, as the publish options copy them.

A model over 2 GB keeps its weights in external data files named inside it, relative to its
folder. `--tokenizer` publishes a copy of the model file with the tokenizer embedded, and
`--quantize` a new model: each needs its data files beside it under the names it gives them.
The source's data files are hard-linked there, not copied (gigabytes); across file systems,
where a hard link cannot be made, they are copied. Not symbolic links: onnxruntime refuses a data
file that resolves outside the model's folder. The `onnx` package, for its part, refuses to read
a data file with more than one link (a guard against hardlink attacks): the quantizers, which
read the source with it, run before any link is made (`publish_options`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from functions.runtime.artifact_files import external_data_names, files_to_publish
from functions.runtime.cache import sha256_file
from functions.runtime.errors import BadRequest


def data_files(model: Path) -> dict[str, Path]:
    """The external data files `model` names, by name; a BadRequest naming a missing one."""
    return {name: local for name, (local, _) in files_to_publish(model, {}).items()}


def require_data_files(model: Path) -> None:
    """A BadRequest naming a missing external data file of `model`; a file that is not ONNX at
    all is left to onnxruntime's load to describe."""
    try:
        external_data_names(model)
    except BadRequest:
        return
    data_files(model)


def total_bytes(model: Path) -> int:
    """The bytes of `model` and all its data files: what a version of it stores and loads."""
    return model.stat().st_size + sum(p.stat().st_size for p in data_files(model).values())


def link_data_files(source: Path, copy: Path) -> None:
    """Make `source`'s data files appear beside `copy` (a copy of its model file)."""
    for name, local in data_files(source).items():
        placed = copy.parent / name
        placed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(local, placed)
        except OSError:  # another file system, or one without hard links
            shutil.copyfile(local, placed)


def describe_data_files(model: Path) -> list[dict[str, Any]]:
    """Each data file of `model` as a manifest records a source: name, size, sha256."""
    return [
        {"file": name, "size": local.stat().st_size, "sha256": sha256_file(local)}
        for name, local in data_files(model).items()
    ]
