"""Whether the cache directory can take a model's files: room on its disk (DISK_MARGIN kept
free), and that it can be made and written at all. A model that cannot be cached is held in
memory (AIAAS_MODEL_LOAD=auto), and a warning says so once a process for each reason."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from functions.runtime.settings import make_dirs

MB = 1024 * 1024
DISK_MARGIN = 64 * 1024 * 1024  # room left on the cache disk after a model's files
log = logging.getLogger("aiaas.runtime")
# (cache directory, reason) warned about: once a process, not once for each of its models.
_warned: set[tuple[Path, str]] = set()


def disk_problem(directory: Path, size: int) -> tuple[str, str] | None:
    """(reason, what it is) `directory` cannot take `size` bytes, else None. Reasons: "unusable"
    (it cannot be made or written), "full" (least recently used entries may make room)."""
    try:
        make_dirs(directory)  # never a missing HOME of the default ~/.cache/aiaas
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        return "unusable", f"it cannot be made ({exc.strerror})"
    if not os.access(directory, os.W_OK | os.X_OK):  # read-only mounts included
        return "unusable", "it is not writable"
    if free < size + DISK_MARGIN:
        need, files = (size + DISK_MARGIN + MB - 1) // MB, (size + MB - 1) // MB
        return "full", (
            f"its disk has {free // MB} MB free and a model needs {need} MB ({files} MB of "
            f"files and {DISK_MARGIN // MB} MB kept free)"
        )
    return None


def warn_held_in_memory(directory: Path, reason: str, what: str) -> None:
    """Say once a process, for each reason, that models are held in memory, not cached."""
    if (directory, reason) in _warned:
        return
    _warned.add((directory, reason))
    log.warning(
        "model files are held in memory, not cached in %s: %s. Each process holds every "
        "model it loads in memory and downloads it again at every start: set "
        "AIAAS_CACHE_DIR to a writable directory with room for the models",
        directory,
        what,
    )
