"""What a command says of a path it was given to read that is not a file it can read: a folder
named where a file goes (`aiaas publish ./model/`) was "no such file", which sent people looking
for a typo in a path that exists; so were a pipe (`publish <(...)`) and a device (`/dev/null`),
and a file it may not read or a name too long was a Python traceback. And the extension that
picks a local file's format, read as batch scoring reads a store key's (batch/layout.py
lower-cases it): `TRAIN.NPY` was refused by `aiaas baseline` as "unsupported input format
'.npy'" while `aiaas batch` scored it."""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from pathlib import Path

from functions.runtime.errors import BadRequest

# What stat says of a path that is there but not a regular file, and what to do instead.
# A pipe is read once and cannot be seeked; the commands read their file more than once.
_KINDS = (
    (stat.S_ISDIR, "a folder, not a file", ""),
    (stat.S_ISFIFO, "a pipe, not a file on disk", "save what it gives to a file and give that"),
    (stat.S_ISSOCK, "a socket, not a file on disk", "give a file"),
)
_MISSING = (errno.ENOENT, errno.ENOTDIR)  # `x/y` where x is a file: no such file either


@dataclass(frozen=True)
class NotAFile:
    """Why a path is not a file this command can read: `reason` alone, `line` with the path."""

    reason: str
    line: str
    missing: bool = False


def not_readable(path: Path) -> NotAFile | None:
    """None if `path` is a regular file this process can open for reading (opened and closed:
    permissions are the kernel's to judge, root's capabilities included), else why not."""
    try:
        found = path.stat()
    except OSError as exc:
        return _os_error(path, exc)
    mode = found.st_mode
    for test, reason, fix in _KINDS:
        if test(mode):
            return NotAFile(reason, f"{path} is {reason}" + (f": {fix}" if fix else ""))
    if not stat.S_ISREG(mode):  # a character or block device: /dev/null, /dev/tty, a disk
        reason = "a device, not a file on disk"
        return NotAFile(reason, f"{path} is {reason}: give a file")
    try:
        with path.open("rb"):  # a regular file: never blocks
            pass
    except OSError as exc:
        return _os_error(path, exc)
    return None


def _os_error(path: Path, exc: OSError) -> NotAFile:
    if exc.errno in _MISSING:
        return NotAFile("no such file", f"no such file: {path}", missing=True)
    reason = exc.strerror or type(exc).__name__  # Permission denied, File name too long, ...
    return NotAFile(reason, f"cannot read {path}: {reason}")


def require_file(path: Path, flag: str = "") -> None:
    """Refuse, in one line naming `path` (after `flag`, e.g. `--data`), what is not a file this
    process can read."""
    problem = not_readable(path)
    if problem is not None:
        raise BadRequest(f"{flag}: {problem.line}" if flag else problem.line)


def is_file(path: Path) -> bool:
    """Path.is_file that never raises: Python 3.11's raised for a name too long or a folder
    it may not enter (the user's own paths: a traceback)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return False


def file_suffix(path: Path) -> str:
    """`path`'s extension, lower-cased: `.npy` for `train.NPY` (a Windows export, a camera's
    `.JPG`), compared with the lower-case names of the formats a command reads."""
    return path.suffix.lower()
