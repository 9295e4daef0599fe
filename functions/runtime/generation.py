"""A number that every write to a directory store changes, mapped into every process using it.

`aiaas serve` checks the alias record of every served model on every request (served.py's
`RegistryWatch`), so a promote from any process is served from the next request on. Even
through a held descriptor (stamps.py) that check is an `fstat`, ~5 us of a ~40 us request in
the handler (the system call, and the caches it leaves cold). The store instead writes a new
random number into one shared 8-byte file after each of its writes and deletes, and a key's
stamp is kept with the number read before it was taken: while the number is unchanged no
write has finished since, so the kept stamp is still the key's and no system call is needed.

A random number, not a counter: two writers incrementing at once could both write the same
next value, and a reader that saw the first would miss the second.

Only what the store itself writes bumps the number (every aiaas process writes through
it); a file changed or deleted by hand under the store is seen when the kept stamp is read
again anyway, at most a second later (stamps.py's `RECHECK_S`). Used on
local filesystems only, where a shared mapping is coherent between processes (stamps.py).
"""

from __future__ import annotations

import mmap
import os
import random

GENERATION_FILE = ".tmp-generation"  # hidden from listings and scoring, as the temp files are


class Generation:
    """The store-wide write number under `root`; None while it cannot be mapped (a read-only
    or missing root: stamps are then always read from the filesystem)."""

    def __init__(self, root: str, mode: int) -> None:
        self.path = f"{root}/{GENERATION_FILE}"
        self.mode = mode
        self._view: memoryview | None = None

    def read(self) -> int | None:
        view = self._view
        if view is None:
            view = self._view = self._map()
            if view is None:
                return None
        return int(view[0])

    def bump(self) -> None:
        """Called after every write and delete (a no-op where the file cannot be mapped)."""
        view = self._view or self._map()
        if view is not None:
            self._view = view
            view[0] = random.getrandbits(64)

    def _map(self) -> memoryview | None:
        try:
            # Not through a link planted in the store's folder: every write of the store would
            # overwrite the first 8 bytes of the file it names (security hunt 2).
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
            fd = os.open(self.path, flags, self.mode)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < 8:
                os.ftruncate(fd, 8)  # zeros; a second process doing the same changes nothing
            # Its block allocated before it is mapped: a hole (ftruncate's, or one a crashed
            # process left) faulted in on a full disk killed the process with SIGBUS, `aiaas
            # serve` at its first model load, `promote` after writing the alias. Full (ENOSPC
            # here): not mapped, as for a read-only store.
            os.posix_fallocate(fd, 0, 8)
            return memoryview(mmap.mmap(fd, 8)).cast("Q")
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
