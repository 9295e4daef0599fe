"""The files under a directory store's folder, walked while other processes write and delete.

A prune, a control-plane DELETE of a version, or a publish's sweep of empty version folders
removes folders while a listing walks them. `Path.rglob` raised FileNotFoundError for a folder
removed between its parent's listing and its own: `aiaas models` and `aiaas versions` exited 1
("…/versions/286: No such file or directory") and the control plane's model lists answered a
plain-text 500 during a prune. A folder gone meanwhile holds nothing now, as an S3 listing
would show it: skipped. Any other error reading a folder (permissions) is raised, for the store
to name.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

_GONE = frozenset({errno.ENOENT, errno.ENOTDIR})  # removed (or replaced by a file) meanwhile


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under `folder` (not through a symbolic link, as `rglob` did not
    follow one into a folder and a link is no object), in no particular order."""
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        if exc.errno in _GONE:
            return
        raise
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from walk_files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield Path(entry.path)
        except OSError as exc:  # its stat, where the folder's listing did not give its type
            if exc.errno not in _GONE:
                raise
