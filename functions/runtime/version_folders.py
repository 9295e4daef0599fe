"""A model's published versions from one delimiter listing of its `versions/` folder: one
entry a version (S3's CommonPrefixes, a LIST per 1,000 versions), where listing every key
read a page per 1,000 *files* (model, manifest, card, plots, baseline, ...) and grew with each.

A version exists once its manifest does (publishes write it last), and a folder shows before
its manifest: a publish running now, or one killed outright (a failing publish removes its
files). Such a folder is the newest one, so the newest folders' manifests are read, from the
top down, until one is there: that read is the bare name's resolution anyway (one GET, as
before). Past `NEWEST_TRIED` folders without one, the exact listing of every key decides.
A folder older than the newest published one is taken as a version without a read (a HEAD a
version, 1,500 for 1,500 versions, would cost more than the walk it replaces): only a publish
or a prune killed outright leaves one there. Except the folders this listing's last run found
without a manifest (a publish killed on top, then a newer version published: it was named a
version, and a pinned request to it 404s): up to `NEWEST_TRIED` of them are read again, and
left out while still without one, so a TTL costs at most the GETs a killed publish on top
costs already. `aiaas prune` deletes a folder a publish left without a manifest once nothing
has written to it for KILLED_AFTER_S (killed_publishes.py, 6 hours); a prune killed
outright leaves files the next prune recognises as its own and removes.

`Listings` keeps each model's last listing with its time, so that GET /v2/models/{name}
(its `versions`) answers from the one the bare name's re-resolution just made: one listing a
TTL, where there were two.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from functions.runtime.errors import AiaasError, CorruptRecord, ModelNotFound, NotFound
from functions.runtime.manifest import ModelManifest
from functions.runtime.manifest_schema import NewerManifest
from functions.runtime.refs import manifest_key, model_prefix, version_sort_key
from functions.runtime.store import ObjectStore

NEWEST_TRIED = 3  # folders without a manifest read from the top before the exact walk
KEPT_MODELS = 1024  # listings kept: a server's models (a control plane may list many more)


@dataclass(frozen=True)
class VersionFolders:
    """One listing of a model's versions: `published` in `version_sort_key` order (the last
    is what the bare name serves), and that one's manifest as read."""

    name: str
    published: tuple[str, ...]
    newest: ModelManifest
    # folders found without a manifest (newest first, at most 2 * NEWEST_TRIED): read again
    # by the next listing, which leaves them out while they still have none
    unpublished: tuple[str, ...] = ()


def list_versions(
    store: ObjectStore,
    name: str,
    every_key: Callable[[str], list[str]],
    last: VersionFolders | None = None,
) -> VersionFolders:
    """`name`'s versions from a delimiter listing (see the module docstring); `every_key`:
    the exact listing (`Registry.versions`), for when the newest folders have no manifest;
    `last`: the model's previous listing, whose folders without a manifest are read again."""
    folders = sorted(store.list_dirs(f"{model_prefix(name)}/versions"), key=version_sort_key)
    missing: list[str] = []
    for tried, version in enumerate(reversed(folders)):
        if tried == NEWEST_TRIED:
            exact = every_key(name)  # ModelNotFound when none is published
            raw = store.get_bytes(manifest_key(name, exact[-1]))
            named = set(exact)
            gone = [v for v in reversed(folders) if v not in named]
            return VersionFolders(name, tuple(exact), parsed(name, exact[-1], raw), _kept(gone))
        try:
            raw = store.get_bytes(manifest_key(name, version))
        except NotFound:
            missing.append(version)  # being published (or a publish killed outright)
            continue
        below = folders[: len(folders) - tried - 1]
        missing += _still_missing(store, name, below, () if last is None else last.unpublished)
        published = tuple(v for v in (*below, version) if v not in missing)
        return VersionFolders(name, published, parsed(name, version, raw), _kept(missing))
    raise ModelNotFound(f"model {name!r} not found")


def _still_missing(
    store: ObjectStore, name: str, below: list[str], seen: tuple[str, ...]
) -> list[str]:
    """Those of `seen` (folders the last listing found without a manifest) still in `below`
    and still without one: at most NEWEST_TRIED reads (the newest); the rest count as versions."""
    there = set(below)
    missing = []
    for version in [v for v in seen if v in there][:NEWEST_TRIED]:
        try:
            store.get_bytes(manifest_key(name, version))
        except NotFound:
            missing.append(version)  # still not a version: left out
    return missing


def _kept(missing: list[str]) -> tuple[str, ...]:
    """The folders without a manifest a listing remembers: the newest, a bounded number."""
    return tuple(sorted(missing, key=version_sort_key, reverse=True)[: 2 * NEWEST_TRIED])


def parsed(name: str, version: str, raw: bytes) -> ModelManifest:
    """The manifest stored for `name:version`; CorruptRecord (a 503) when it does not read."""
    try:
        return ModelManifest.from_json(raw, stored_as=(name, version))
    except NewerManifest as exc:  # sound, for a later release: not the caller's request either
        raise CorruptRecord(
            f"version {version!r} of model {name!r} cannot be served by this aiaas: {exc.message}",
            public_message=f"model {name}:{version} was published by a newer aiaas than this "
            "function runs; upgrade the function",
        ) from exc
    except AiaasError as exc:  # the stored manifest is broken: not the caller's request
        raise CorruptRecord(
            f"version {version!r} of model {name!r} has a corrupt manifest: {exc.message}",
            public_message=f"model {name}:{version} has a corrupt manifest in the registry",
        ) from exc


class Listings:
    """The last listing of each model, and when it was made (`time.monotonic`)."""

    def __init__(self) -> None:
        self._made: dict[str, tuple[float, VersionFolders]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        reuse_within: float,
        make: Callable[[VersionFolders | None], VersionFolders],
    ) -> VersionFolders:
        """The listing made less than `reuse_within` seconds ago, else a new one (`make`, given
        the last one: the folders it found without a manifest are read again)."""
        with self._lock:
            made, found = self._made.get(name, (-float("inf"), None))
        if found is not None and time.monotonic() - made < reuse_within:
            return found
        started = time.monotonic()  # a listing is as old as its start
        listing = make(found)
        with self._lock:
            if len(self._made) >= KEPT_MODELS and name not in self._made:
                self._made.pop(next(iter(self._made)))  # the oldest-added model's
            if self._made.get(name, (-float("inf"),))[0] <= started:
                self._made[name] = (started, listing)
        return listing
