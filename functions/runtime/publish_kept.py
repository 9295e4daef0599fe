"""A stopped publish never leaves a published version without a file its manifest lists.

Two publishes of one version at once (`--version V`: a CI job and its retry) send the same
files; the second to write a file finds the first's, with its bytes, and lists it in its own
manifest (publishing.py `_commit`, `_replace`). A publish that does not finish removes the
files it wrote (`unclaim`), unless a manifest of the version is there: a twin lists them. That
look and the deletes cannot be one store operation, so a twin's manifest could land between
them: a SIGTERM to one twin left the other's version published (exit 0) without its
model.onnx, served as 503 "incomplete" (rev13 1).

Each side now looks after it writes, so one of them always sees the other's write (the
directory store and S3 are strongly consistent: a read sees every write done before it):
- the stopped publish deletes, then reads the manifest: there, it puts back each file the
  manifest lists from its own local files, with the bytes listed (written only if absent);
- the publish that took another's file writes its manifest, then looks for each such file:
  one missing, it puts it back from its own local file.
Either the manifest was there when the stopped publish read it after its deletes, or it was
written after them and its writer sees them gone. Only a publish killed outright (SIGKILL)
between its deletes and its read leaves the hole, as any kill midway through a write does.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from functions.runtime.errors import AiaasError, NotFound
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import manifest_key, number_key, version_prefix
from functions.runtime.store import CHUNK, ObjectChanged, ObjectExists, ObjectStore

# A file of the version as this publish has it locally: its path and sha256.
Source = tuple[Path, str]
log = logging.getLogger("aiaas.registry")
# A file replaced is kept in memory to be put back (`put_back_replaced`) up to this size:
# cards and vocabularies are far smaller; a bigger one is only reported.
KEPT_MAX = 16 * 1024 * 1024


def unclaim(
    store: ObjectStore,
    name: str,
    version: str,
    committed: Sequence[str],
    sources: Mapping[str, Source],
    replaced: Sequence[Replaced] = (),
) -> None:
    """Remove the files a publish that did not finish wrote (`committed`): a Ctrl-C after the
    model went up left 51 MB in S3 under a version that never existed, past what prune cleans.
    Not when a manifest is there now, and put back when one came meanwhile: a twin that found
    the same bytes lists them. A file written over whatever was there (`replaced`: the card)
    is removed only while it is still this run's write: a twin that found it replaced it, and
    its manifest lists the twin's bytes (rev15 1)."""
    own = {item.key: item.version for item in replaced}
    with contextlib.suppress(Exception):
        if not committed or store.exists(manifest_key(name, version)):
            return
        for key in committed:
            with contextlib.suppress(NotFound, ObjectChanged):
                store.delete(key, if_version=own.get(key))
    with contextlib.suppress(Exception):  # a failed delete above skips none of these
        put_back(store, name, version, committed, sources)


def put_back(
    store: ObjectStore,
    name: str,
    version: str,
    keys: Sequence[str],
    sources: Mapping[str, Source],
) -> None:
    """Each of `keys` that a manifest of `name:version` now lists, with the bytes of its
    source here, written again if the store lacks it (only if absent: the same bytes)."""
    try:
        manifest = ModelManifest.from_json(store.get_bytes(manifest_key(name, version)))
    except NotFound:
        return  # no version: nothing of it is owed to anyone
    except AiaasError:
        manifest = None  # unreadable, but there: keep what it may list
    prefix = version_prefix(name, version)
    listed: dict[str, str] | None = None
    if manifest is not None:
        listed = {f"{prefix}/{f.path}": f.sha256 for f in manifest.files}
        listed[f"{prefix}/{manifest.file.path}"] = manifest.file.sha256
    for key in keys:
        if version.isdigit() and key == number_key(name, version):
            _write(store, key, version.encode())  # the number's claim, for its spelling
            continue
        source = sources.get(key)
        if source is None or (listed is not None and listed.get(key) != source[1]):
            continue
        if not store.exists(key):
            _write(store, key, source)


def keep_taken(
    store: ObjectStore,
    name: str,
    version: str,
    taken: Sequence[str],
    sources: Mapping[str, Source],
    replaced: Sequence[Replaced] = (),
) -> None:
    """After this publish's manifest is written: each file it found written by another run
    with its bytes (`taken`) is still there, or is put back from this run's own file. That
    run stopped, saw no manifest, and removed it. Each file it wrote over whatever was there
    (`replaced`: the card) is still its write, or is written again from its own file: a twin
    stopped before its manifest removed it, or left its own card there (rev15 1, 4). One
    version check a card: the only requests this adds to a publish no twin meets."""
    for key in taken:
        if not store.exists(key):
            _write(store, key, sources[key])
    for item in replaced:
        now = store.version(item.key)
        if now != item.version:
            _write(store, item.key, sources[item.key], over=now)


def _write(store: ObjectStore, key: str, data: Source | bytes, *, over: str | None = None) -> None:
    """Write `data` as `key` only while it is version `over` (None: absent; else another put
    it back first: the same bytes). A file is sent only as the bytes read hash to its listed
    sha256: the local file is a hard link to the user's, which an export rewrites in place
    (rev15 2); else it is left out."""
    if isinstance(data, bytes):
        with contextlib.suppress(ObjectExists):
            store.put_bytes(key, data, if_absent=True)
        return
    path, sha256 = data
    with store.open_staged(key) as target:
        digest = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                target.file.write(chunk)
        if digest.hexdigest() != sha256:
            log.warning(
                "%s is missing and not put back: %s changed since it was published (its "
                "sha256 is no longer the manifest's); publish the version's files again",
                key,
                path,
            )
            return
        with contextlib.suppress(ObjectChanged):
            target.publish(over)  # only over what was read: never a later writer's


@dataclass(frozen=True)
class Replaced:
    """A file a publish wrote over whatever was there (publishing.py `_replace`): the version
    it wrote, and the bytes it replaced (None: there were none, or more than KEPT_MAX)."""

    key: str
    sha256: str
    version: str
    previous: bytes | None


def read_kept(store: ObjectStore, key: str) -> bytes | None:
    with contextlib.suppress(NotFound), store.open_read(key) as stored:
        data = stored.read(KEPT_MAX + 1)
        return data if len(data) <= KEPT_MAX else None
    return None


def put_back_replaced(
    store: ObjectStore, name: str, version: str, replaced: Sequence[Replaced]
) -> None:
    """A twin won the manifest after this publish replaced files the twin had sent: this one
    found them (the twin's manifest not yet written) and replaced them, as if an interrupted
    publish had left them. Put back each replaced file's bytes where the winner's manifest
    lists exactly those and the file is still as this publish wrote it."""
    try:
        winner = ModelManifest.from_json(store.get_bytes(manifest_key(name, version)))
    except AiaasError:  # none, or unreadable: nothing to match the bytes against
        return
    listed = {f"{version_prefix(name, version)}/{f.path}": f.sha256 for f in winner.files}
    for item in replaced:
        want = listed.get(item.key)
        if item.previous is None or want in (None, item.sha256):
            continue
        if hashlib.sha256(item.previous).hexdigest() != want:
            continue  # not the winner's bytes either: nothing better to put there
        with store.open_staged(item.key) as target, contextlib.suppress(ObjectChanged):
            target.file.write(item.previous)
            target.publish(item.version)  # only over our own bytes, never a later writer's
