"""Each run's own work folder beside `--out` (`.<name>.run-XXXX`), and the sweep of those a
killed run left.

A run holds an exclusive `flock` on its folder for as long as it lives: the kernel drops it
when the process ends, SIGKILL (an OOM kill) included, which no cleanup handler sees. So the
next run of that `--out` can tell a dead run's folder (the lock is free) from a live one's (it
is held) and remove only the former. A folder counts as a run's once it holds `card/`, made
only after the lock was taken: a folder met between its creation and its lock is left alone
(a sweep that took the free lock there would remove a live run's folder)."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
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
    work = Path(tempfile.mkdtemp(prefix=_prefix(out_dir), dir=parent))
    fd = os.open(work, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # never contended but by a sweep that then leaves it
        except OSError as exc:  # a filesystem without locks: its sweeps cannot lock either
            log.debug("no lock on %s (%s): a kill of this run leaves it there", work, exc)
        (work / "card").mkdir()
    except BaseException:
        os.close(fd)
        raise
    return work, fd


def sweep(out_dir: Path) -> list[Path]:
    """Remove the work folders of `out_dir`'s runs that were killed (their lock is free) and
    say so in one INFO line; a live run's folder is never touched. Housekeeping: a folder that
    cannot be removed is a warning, never why a run fails."""
    parent = out_dir.resolve().parent
    if not parent.is_dir():
        return []
    removed = []
    for folder in sorted(parent.glob(_prefix(out_dir) + "*")):
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone meanwhile (its run swapped it in), or not a folder
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live run's (or a filesystem without locks: whose, none can tell)
            os.close(fd)
            continue
        try:
            if (folder / "card").is_dir():  # its run had locked it: that run is gone
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
