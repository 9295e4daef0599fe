"""A directory store's listings while another writer deletes versions (registry hunt 1).

`LocalStore.list_keys` walked with `Path.rglob`, which raised FileNotFoundError for a folder a
prune removed between its parent's listing and its own: `aiaas models` and `aiaas versions`
exited 1 ("…/versions/286: No such file or directory"), and the control plane's model lists
answered a plain-text 500 while `aiaas prune` ran. A folder deleted meanwhile is now left out,
as an S3 listing leaves out a key deleted before its page.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from functions.runtime.errors import StoreError
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.publishing import publish_linear

CHURN_S = 3.0  # the old walk failed within a few hundred listings: well inside this


def churn(store: LocalStore, stop: threading.Event) -> int:
    """Version folders written and deleted as a prune deletes them (each delete removes the
    folders it empties): how many went."""
    gone = 0
    while not stop.is_set():
        keys = [f"models/m/versions/{n}/{part}" for n in range(100, 140) for part in ("a", "c/b")]
        for key in keys:
            store.put_bytes(key, b"x")
        for key in keys:
            store.delete(key)
        gone += 40
    return gone


def test_listings_survive_folders_deleted_meanwhile(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    registry = Registry(store)
    publish_linear(registry, tmp_path, "m", "1")
    publish_linear(registry, tmp_path, "m", "2")
    stop, counted = threading.Event(), []
    writer = threading.Thread(target=lambda: counted.append(churn(store, stop)))
    writer.start()
    listings, failures = 0, []
    try:
        end = time.monotonic() + CHURN_S
        while time.monotonic() < end:
            for listing in (
                lambda: registry.versions("m"),
                registry.models,
                lambda: list(store.list_keys("models")),
            ):
                listings += 1
                try:
                    listing()
                except Exception as exc:  # what the old walk raised: counted
                    failures.append(repr(exc))
    finally:
        stop.set()
        writer.join()
    assert counted[0] > 0 and listings > 0
    assert failures == [], f"{len(failures)} of {listings} listings failed: {failures[:3]}"
    assert registry.versions("m") == ["1", "2"]  # and the versions are as published


def test_an_unreadable_folder_is_a_store_error(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("models/m/versions/1/manifest.json", b"{}")
    locked = store.root / "models/m/versions/1"
    locked.chmod(0)
    try:
        if _readable(locked):  # root reads any folder
            pytest.skip("this user reads a folder whatever its mode")
        with pytest.raises(StoreError, match="models"):
            list(store.list_keys("models"))
    finally:
        locked.chmod(0o755)


def _readable(folder: Path) -> bool:
    try:
        list(folder.iterdir())
    except PermissionError:
        return False
    return True
