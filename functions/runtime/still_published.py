"""Whether a loaded version is still in the registry: `aiaas prune` may delete one a server
holds. Versions are immutable, so a loaded one needs no store read to serve; it is asked once
an `AIAAS_ALIAS_TTL` (a `stat` on a directory store, a HEAD on S3), as an alias is re-read.
"""

from __future__ import annotations

import threading
from time import monotonic

from functions.runtime.errors import AiaasError
from functions.runtime.refs import manifest_key
from functions.runtime.store import ObjectStore


class StillPublished:
    """Checks, at most every `ttl` seconds a version, that a version's manifest still exists."""

    def __init__(self, store: ObjectStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def loaded(self, key: tuple[str, str]) -> None:
        """`key` was just resolved from its manifest: good for a TTL."""
        with self._lock:
            self._until[key] = monotonic() + self.ttl

    def __call__(self, key: tuple[str, str]) -> bool:
        """False once its manifest is gone (pruned): the caller drops it and resolves again,
        which answers 404. A store that cannot answer keeps it serving."""
        now = monotonic()
        if now < self._until.get(key, 0.0):
            return True
        try:
            there = self.store.exists(manifest_key(*key))
        except AiaasError:
            return True  # the store is down: serving what is loaded beats a 503
        with self._lock:
            if there:
                self._until[key] = now + self.ttl
            else:
                self._until.pop(key, None)
        return there
