"""A file a command writes for its user (`capture export --out`, `monitor --png`): whole, or
not at all, and a folder it cannot write in said in one line, not a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from functions.runtime.errors import BadRequest


@contextlib.contextmanager
def output_file(path: Path, *, parents: bool = False) -> Iterator[Path]:
    """A temp file beside `path` for the block to fill; renamed to `path` when the block ends
    well, removed when not (an error, Ctrl-C): a file there before stays as it was. An OSError
    (a folder missing or not writable, a full disk) is a BadRequest naming `path`, so the block
    should hold only the writing. With `parents`, missing folders above `path` are made."""
    temp: Path | None = None
    try:
        if parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        temp = Path(name)
        mask = os.umask(0o022)  # mkstemp makes 0600 files; the user's umask decides, as for `cp`
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        os.close(fd)
        yield temp
        temp.replace(path)
    except OSError as exc:
        why = "no space left" if exc.errno == errno.ENOSPC else exc.strerror or type(exc).__name__
        raise BadRequest(f"cannot write {path}: {why}") from exc
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)


def check_folder(path: Path) -> None:
    """Refuse, before any work, a file `output_file` could not write for want of its folder
    (missing, not a folder, not writable): said as `output_file` says it, not after the work."""
    folder = path.parent
    if not folder.is_dir():
        why = "No such file or directory" if not folder.exists() else "Not a directory"
        raise BadRequest(f"cannot write {path}: {why}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BadRequest(f"cannot write {path}: Permission denied")
