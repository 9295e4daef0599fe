"""Pieces of the directory store: a ranged read of a file, and a staged upload (a temp file
beside its key, renamed into place on commit)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class Limited(io.RawIOBase):
    """The next `left` bytes of a file, as a ranged GET of an object gives them."""

    def __init__(self, handle: IO[bytes], left: int) -> None:
        self.handle, self.left = handle, max(left, 0)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: self.left]
        count = self.handle.readinto(view) or 0  # type: ignore[attr-defined]
        self.left -= count
        return count


class StagedFile:
    """A file copied into a temp file beside its key; committing renames (or links) it."""

    sha256 = ""
    size = 0

    def __init__(self, commit: Callable[[], None], tmp: Path) -> None:
        self.tmp, self._commit = tmp, commit

    def commit(self) -> None:
        try:
            self._commit()
        finally:
            self.abort()  # linked, the temp name goes; failed, the staged bytes go

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.unlink(missing_ok=True)
