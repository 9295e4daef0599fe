"""The workers' metrics files (`aiaas serve --workers N`) backed by disk blocks before use.

prometheus_client maps each worker's file sparse (`truncate`, then `mmap`) and grows it the
same way; a page written where the disk has no block left is a SIGBUS, which killed every
worker and the server when the cache disk filled while serving (found running serve for a
team, the cache directory on a tmpfs that models filled). Here each region is allocated with
`posix_fallocate` before prometheus_client maps it: a full disk is then an `OSError` when a new
series is first counted, which `PrometheusFamilies` drops with one warning, and every page
already mapped has its block.

prometheus_client has no hook for this; `values.MmapedDict` is replaced by a subclass that
keeps its layout (pinned by tests/infra/test_metrics_dir_room.py).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import mmap_dict, values


class BackedMmapedDict(mmap_dict.MmapedDict):
    """prometheus_client's file, each region allocated before it is mapped and written."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        if not read_mode:
            reserve(filename, mmap_dict._INITIAL_MMAP_SIZE)
        super().__init__(filename, read_mode)  # type: ignore[no-untyped-call]

    def _init_value(self, key: str) -> Any:
        encoded = len(key.encode("utf-8"))
        size = 4 + encoded + (8 - (encoded + 4) % 8) + 16  # as MmapedDict._init_value packs it
        capacity = self._capacity
        while self._used + size > capacity:
            capacity *= 2
        if capacity != self._capacity:
            os.posix_fallocate(self._f.fileno(), 0, capacity)
        return super()._init_value(key)  # type: ignore[no-untyped-call]


def reserve(filename: str, size: int) -> None:
    """`filename` made (as prometheus_client opens it) with `size` bytes allocated."""
    fd = os.open(filename, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        if os.fstat(fd).st_size < size:
            os.posix_fallocate(fd, 0, size)
    finally:
        os.close(fd)


def install() -> None:
    """Every multiprocess file this process opens from now on is a `BackedMmapedDict`."""
    values.MmapedDict = BackedMmapedDict  # type: ignore[attr-defined]
