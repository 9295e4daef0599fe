"""A directory store's folders stay inside its root: a symbolic link among them is followed
only where it leads to a folder of the same store.

`LocalStore` opens objects with O_NOFOLLOW, which guards the last part of a path alone: a
folder link planted in a store someone hands over (`batch -> /elsewhere`) made `aiaas batch`
write its input copy, output and summary outside the store (security hunt 3). Every key's
folders are checked before a read, write, delete or listing uses them: an lstat per folder
below the root, ~1 us each (the object read itself costs ~15 us), and where one is a link, the
folder's real path against the root's. Not cached: a link planted later is still seen.
"""

from __future__ import annotations

import os
from stat import S_ISLNK

from functions.runtime.errors import StoreError


def key_folder(key: str) -> str:
    """The folder part of a checked key (`models/iris` of `models/iris/card.md`)."""
    return key.rpartition("/")[0]


def check_inside(root: str, folder: str, key: str) -> None:
    """Raise StoreError when `folder` (a '/'-separated path under `root`, which is resolved)
    passes through a symbolic link that leads out of `root`. A part not there yet (a write
    makes it a folder) or not a folder (the operation itself says so) ends the walk."""
    path = root
    for part in folder.split("/"):
        if not part:
            continue
        path = f"{path}/{part}"
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return
        if S_ISLNK(mode):
            real = os.path.realpath(path)
            if real == root or real.startswith(root + "/"):
                path = real  # the walk goes on from where it leads: a link further on is
                continue  # checked too (batch -> real, real/iris -> /elsewhere)
            raise StoreError(
                f"cannot use {key!r} under {root}: {path} is a symbolic link to {real}, outside "
                "the store; a store's folders are its own, and links out of it are not followed "
                "(move that folder into the store, or give the store's path as it is there)"
            )
