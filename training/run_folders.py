"""Each run's own work folder beside `--out` (`.<name>.run-XXXX`), and the sweep of those a
killed run left; `temp_work_folder`, the same for `aiaas publish` and `aiaas pull` in TMPDIR.

A run holds an exclusive `flock` on its folder for as long as it lives: the kernel drops it
when the process ends, SIGKILL (an OOM kill) included, which no cleanup handler sees. So the
next run of that `--out` can tell a dead run's folder (the lock is free) from a live one's (it
is held) and remove only the former. A folder counts as a run's once it holds `card/`, made
only after the lock was taken: a folder met between its creation and its lock is left alone
(a sweep that took the free lock there would remove a live run's folder)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger("aiaas.training")


def work_folder(out_dir: Path) -> tuple[Path, int]:
    """A new work folder beside `out_dir`, with its card/ folder, and the descriptor holding its
    lock: the caller closes it once the run ended (swapped in or removed). A run writes there
    and swaps it in only once it succeeded, so a failed run (no GPU, an export error, a NaN
    loss) leaves the previous run's model and card as they were, and two runs of one spec at
    once never write into each other's files."""
    parent = out_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    return held_folder(parent, _prefix(out_dir), "card")


def sweep(out_dir: Path) -> list[Path]:
    """Remove the work folders of `out_dir`'s runs that were killed (see `sweep_folders`)."""
    return sweep_folders(out_dir.resolve().parent, _prefix(out_dir), "card")


@contextlib.contextmanager
def temp_work_folder(prefix: str) -> Iterator[Path]:
    """A private work folder in TMPDIR (`prefix` + random), held while the block runs and
    removed however it ends, as `tempfile.TemporaryDirectory` is; the folders SIGKILLed
    holders left there before (an OOM-killed `publish --quantize` leaves a whole copy of the
    model, in a RAM-backed /tmp) are removed first."""
    parent = Path(tempfile.gettempdir())
    sweep_folders(parent, prefix, HELD)
    work, fd = held_folder(parent, prefix, HELD)
    try:
        yield work
    finally:
        try:
            shutil.rmtree(work, ignore_errors=True)
        finally:
            os.close(fd)


HELD = ".held"  # the marker of a temp work folder: hidden, no name a version's file can take


def held_folder(parent: Path, prefix: str, marker: str) -> tuple[Path, int]:
    """A new folder `prefix`XXXX in `parent` and the descriptor holding its exclusive lock;
    `marker`, made once the lock is held, tells a sweep the folder is a holder's."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    fd = os.open(work, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # never contended but by a sweep that then leaves it
        except OSError as exc:  # a filesystem without locks: its sweeps cannot lock either
            log.debug("no lock on %s (%s): a kill of its holder leaves it there", work, exc)
        (work / marker).mkdir()
    except BaseException:
        os.close(fd)
        raise
    return work, fd


def sweep_folders(parent: Path, prefix: str, marker: str) -> list[Path]:
    """Remove the folders `prefix`* in `parent` whose holder was killed (their lock is free and
    they hold `marker`) and say so in one INFO line; a live holder's folder is never touched.
    Housekeeping: a folder that cannot be removed is a warning, never why a run fails."""
    if not parent.is_dir():
        return []
    removed = []
    for folder in sorted(parent.glob(prefix + "*")):
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone meanwhile (its run swapped it in), another user's, not a folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live run's (or a filesystem without locks: whose, none can tell)
            os.close(fd)
            continue
        try:
            if (folder / marker).is_dir():  # its holder had locked it: that holder is gone
                shutil.rmtree(folder)
                removed.append(folder)
        except OSError as exc:
            log.warning("could not remove %s, a killed run's work folder: %s", folder, exc)
        finally:
            os.close(fd)
    if removed:
        names = ", ".join(p.name for p in removed)
        log.info(
            "removed %d work folder(s) killed runs left in %s: %s", len(removed), parent, names
        )
    return removed


def _prefix(out_dir: Path) -> str:
    return f".{out_dir.resolve().name}.run-"
