"""Versions a model pool found never published (`Unpublished`): their 404 remembered for an
`AIAAS_ALIAS_TTL`, so a caller pinned to a version that does not exist (a typo, a version a CI
is about to publish, a scanner) costs no store read a request: two GETs each before (the
manifest, then the prune record to tell a pruned version from one never published), forever.

A version published meanwhile is found once its 404 is a TTL old, as an alias moved is; at
once where the store tells cheaply that its manifest appeared (a directory store: one stat).
Bounded: a caller sending any number of version names holds at most `MAX_REMEMBERED`, and
the directory store at most `stamps.MAX_KEPT` of their manifests' stamps.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from time import monotonic

from functions.runtime.errors import ModelNotFound
from functions.runtime.refs import manifest_key
from functions.runtime.store import ObjectStore, Stamp

MAX_REMEMBERED = 1024  # (name, version) 404s a pool holds; the oldest goes first


class RememberedNotFound(ModelNotFound):
    """A version's 404 answered from memory: nothing was read for it (nothing more to read)."""


class Unpublished:
    """(name, version) -> its 404's message, until `ttl` seconds after it was read."""

    def __init__(self, store: ObjectStore, ttl: float, most: int = MAX_REMEMBERED) -> None:
        self.store = store
        self.ttl = ttl
        self.most = most
        self._missing: OrderedDict[tuple[str, str], tuple[float, Stamp | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: tuple[str, str]) -> None:
        """Raise the 404 remembered for `key`, if it is still good."""
        with self._lock:
            found = self._missing.get(key)
        if found is None:
            return
        until, stamp, message = found
        if monotonic() < until and (stamp is None or self.stamp(key) == stamp):
            raise RememberedNotFound(message)
        self.forget(key)

    def stamp(self, key: tuple[str, str]) -> Stamp | None:
        """`key`'s manifest's stamp, taken before reading the manifest and passed to `remember`:
        taken after, a manifest written in between was stamped as the one found missing, and
        the version answered 404 for a whole TTL after its publish, on a directory store too."""
        return self.store.stamp(manifest_key(*key))

    def remember(self, key: tuple[str, str], message: str, stamp: Stamp | None) -> None:
        """`key`'s manifest was just found missing, `stamp` taken before it was read; its 404
        says `message`."""
        entry = (monotonic() + self.ttl, stamp, message)
        with self._lock:
            self._missing[key] = entry
            self._missing.move_to_end(key)
            while len(self._missing) > self.most:
                self._missing.popitem(last=False)

    def forget(self, key: tuple[str, str]) -> None:
        """`key` was loaded (or its 404 is stale): read it again."""
        with self._lock:
            self._missing.pop(key, None)

    def clear(self) -> None:
        """Every 404 is read again (a SnapStart restore: they are the snapshot's, hours old)."""
        with self._lock:
            self._missing.clear()
