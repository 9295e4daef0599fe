"""Version folders a publish killed outright left without a manifest: found by `aiaas prune`
and deleted with its run, never one a publish is still writing.

A publish makes its files visible only once every one is staged and checked, then writes the
manifest within moments (publishing.py); one killed in between leaves a folder that is no
version (every reader skips it) and that nothing else removes: a serving listing that never
saw it on top names it a version (a pinned request then 404s), and three on top send every
TTL's listing to the walk of every key. A folder counts as abandoned once nothing in it (nor
its number claim, written just before the files show) has been written for KILLED_AFTER_S;
younger ones are left, and said so. Hours, not ABANDONED_AFTER_S's minute: S3 dates a multipart
upload from its start, so the model file of a named version (no number claim) published over
a slow link shows as old the moment it completes, moments before its manifest. Its manifest is looked for again right before its files go.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Mapping

from functions.runtime.errors import NotFound
from functions.runtime.refs import manifest_key, number_key
from functions.runtime.store import ObjectStore

KILLED_AFTER_S = 6 * 3600.0  # a publish's longest upload, with room: then it was killed
LEFT_YOUNG = "no manifest, written to under 6 hours ago (a publish running?): left for now"


def abandoned_folders(
    store: ObjectStore,
    name: str,
    keys: Mapping[str, tuple[str, ...]],
    skip: Collection[str],
    settled_s: float = KILLED_AFTER_S,
) -> tuple[dict[str, tuple[str, ...]], list[str]]:
    """The folders of `keys` (version -> every key under its folder) without a manifest, but
    for `skip`'s: (the abandoned ones' keys, their number claim included; the younger ones).
    One HEAD a file of each such folder: rare, and a few files each."""
    abandoned: dict[str, tuple[str, ...]] = {}
    young: list[str] = []
    cutoff = time.time() - settled_s
    for version, files in keys.items():
        if version in skip or manifest_key(name, version) in files:
            continue
        claim = _claim(store, name, version)
        written = [_modified(store, key) for key in (*files, *claim)]
        if max(written, default=0.0) > cutoff:  # a file gone meanwhile counts as just written
            young.append(version)
        else:
            abandoned[version] = (*files, *claim)
    return abandoned, young


def remove_abandoned_folders(
    store: ObjectStore, name: str, found: Mapping[str, tuple[str, ...]]
) -> dict[str, tuple[str, ...]]:
    """Delete each folder of `found` still without a manifest; those deleted."""
    gone = {v: keys for v, keys in found.items() if not store.exists(manifest_key(name, v))}
    store.delete_many([key for keys in gone.values() for key in keys])
    return gone


def _claim(store: ObjectStore, name: str, version: str) -> tuple[str, ...]:
    """The number claim `version` holds (its spelling's), which a retry would otherwise meet."""
    if not version.isdigit():
        return ()
    with contextlib.suppress(NotFound):
        if store.get_bytes(number_key(name, version)).decode() == version:
            return (number_key(name, version),)
    return ()


def _modified(store: ObjectStore, key: str) -> float:
    try:
        info = store.head(key)
    except NotFound:
        return float("inf")
    return info.modified or float("inf")  # not known: never taken for old
