"""Lambda SnapStart: what a handler module does so a restored snapshot works like a fresh init."""

from __future__ import annotations

import random
from collections.abc import Callable

from functions.runtime.store import ObjectStore


def after_restore(hook: Callable[[], None]) -> bool:
    """Run `hook` after each restore of a snapshot; False when SnapStart is not present."""
    try:  # present in Lambda's Python runtime when SnapStart is on
        from snapshot_restore_py import register_after_restore
    except ImportError:
        return False
    register_after_restore(hook)
    return True


def reconnect_after_restore(store: ObjectStore) -> bool:
    """Rebuild `store`'s client lazily after each restore; False when SnapStart is not present.

    A snapshot may be restored on many machines, hours after init: credentials and connections
    captured then are stale, so S3 clients are re-created on first use.
    """
    reset = getattr(store, "reset_client", None)
    if reset is None:
        return after_restore(lambda: None)
    return after_restore(reset)


def reseed_after_restore() -> bool:
    """Reseed Python's `random` from the OS after each restore; False when SnapStart is absent.

    The snapshot holds the generator's state, so every container restored from it would draw
    the same numbers in the same order: its n-th request routed alike on a split alias (an
    anonymous caller), captured and copied to a shadow alike, its retries paused alike. AWS asks
    for fresh entropy after a restore ("Handling uniqueness with Lambda SnapStart").
    """
    return after_restore(random.seed)
