"""Lambda SnapStart: what a handler module does so a restored snapshot works like a fresh init."""

from __future__ import annotations

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
