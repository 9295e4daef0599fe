"""A directory store on a full disk: its write number is not mapped, no SIGBUS.

The store's `.tmp-generation` was made 8 bytes long with ftruncate (a hole) and mapped: on a
full tmpfs the first touch of the page could not be backed and the kernel killed the process
with SIGBUS, `aiaas serve` at its first model load ("Bus error", no message) and `aiaas promote`
after it had written the alias. A store copied or synced without its hidden files, or a /tmp
cleaner, leaves no such file. A real tmpfs is filled here (tests/full_disk.py); the store is used in a child process, which the
signal would kill.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.full_disk import full_tmpfs

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import sys
from functions.runtime.generation import Generation
generation = Generation(sys.argv[1], 0o644)
print(generation.read())
generation.bump()
print("bumped")
"""


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    with full_tmpfs(tmp_path / "fs") as root:
        yield root


def test_a_full_disk_leaves_the_write_number_unmapped_not_a_crash(full_disk: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(full_disk)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-1000:])  # -7: SIGBUS
    assert done.stdout.split() == ["None", "bumped"]  # stamps then read from the filesystem
