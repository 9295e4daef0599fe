"""A local record of the version each served reference last resolved to, beside the model
cache (`<cache>/served/<store digest>/<ref>.json`): the version, its files' sha256s and its
whole manifest, written once that version was resolved in the store, fetched and verified.

It is read only while the store is away (functions/runtime/served.py): a process started then
(granian respawning a worker the OOM killer or a crash took, `aiaas serve` restarted during an
outage) had no model until the store answered, though the verified files were in the cache. It
now serves the recorded version from the cache, each file's sha256 checked again against the
recorded manifest as every load checks it (a file that does not match is never served), and
goes back to what the alias names once the store answers. One folder a store: its URI, and
for S3 the endpoint of the user's (AWS_ENDPOINT_URL[_S3]), since two S3 servers may each hold
a bucket of the name: a cache shared by two stores never serves one's record for the other's
model (by the URI alone, a serve of a staging MinIO served production's, review_rev2 3).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from functions.runtime import names
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import MODEL_FILE, ModelManifest, utc_now
from functions.runtime.registry import ModelRef
from functions.runtime.said_once import SaidOnce
from functions.runtime.settings import make_dirs

RECORDS = "served"  # under the cache directory; the cache's trim leaves it alone (cache_trim.py)
log = logging.getLogger("aiaas.runtime")


def records_folder(cache_dir: Path, store: str) -> Path:
    """Where the records of `store` (`store_identity`) are kept in the cache at `cache_dir`."""
    return cache_dir / RECORDS / hashlib.sha256(store.encode()).hexdigest()[:16]


def store_identity(store_uri: str, endpoint: str) -> str:
    """The store at `store_uri` as a client of `endpoint` reaches it (RuntimeSettings'
    `s3_endpoint`): an S3 URI names a bucket of whichever server that is (AWS's own where "")."""
    if not store_uri.startswith("s3://"):
        return store_uri
    return f"{store_uri} at {endpoint.rstrip('/')}" if endpoint else store_uri


def file_digests(manifest: ModelManifest) -> dict[str, str]:
    """The sha256 of each file a load of `manifest` reads (the model file, its external data)."""
    return {MODEL_FILE: manifest.file.sha256, **{f.path: f.sha256 for f in manifest.weight_files}}


class ServedRecords:
    """The records of one store's served references in one cache directory."""

    def __init__(self, cache_dir: Path, store_uri: str, endpoint: str = "") -> None:
        """`endpoint`: the S3 server the store's client reaches (RuntimeSettings')."""
        self.store_uri = store_identity(store_uri, endpoint)
        self.folder = records_folder(cache_dir, self.store_uri)
        self._written: dict[str, str] = {}  # ref -> the version written: not again each TTL
        self._unwritable = SaidOnce(log, "a record is written again")

    def path(self, ref: ModelRef) -> Path:
        return self.folder / f"{ref}.json"

    def write(self, ref: ModelRef, manifest: ModelManifest) -> None:
        """Record that `ref` serves `manifest`'s version (loaded and verified just now). A
        cache that cannot be written is said once: serving never depends on the record."""
        written = f"{manifest.version} {manifest.file.sha256} {manifest.publish_id}"
        if self._written.get(str(ref)) == written:  # each TTL's refresh: no write, no JSON
            return
        record: dict[str, Any] = {
            "store": self.store_uri,
            "ref": str(ref),
            "version": manifest.version,
            "sha256": file_digests(manifest),
            "recorded_at": utc_now(),
            "manifest": manifest.to_dict(),
        }
        try:
            make_dirs(self.folder)
            handle, name = tempfile.mkstemp(dir=self.folder, prefix=".part-")
            scratch = Path(name)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    json.dump(record, out, indent=1, sort_keys=True)
                scratch.replace(self.path(ref))  # a reader sees the old record or this one
            finally:
                scratch.unlink(missing_ok=True)
        except OSError as exc:
            self._unwritable.failed(
                f"cannot record what {ref} serves in {self.folder} ({exc}): a worker started "
                "while the store is away will not serve it from the cache"
            )
            return
        self._written[str(ref)] = written
        self._unwritable.worked(f"what {ref} serves is recorded in {self.folder} again")

    def seen(self, ref: ModelRef) -> tuple[int, int] | None:
        """The record of `ref` as it is now (its inode and mtime; None: none), taken before a
        store read whose 404 may `forget` it."""
        try:
            stat = self.path(ref).stat()
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def forget(self, ref: ModelRef, seen: tuple[int, int] | None) -> None:
        """The store answered that `ref` names nothing now (the model deleted, the alias
        removed, the version pruned): its record goes, so a worker started while the store is
        away does not serve again what it named (a model deleted by hand was served from the
        cache by a worker the OOM killer took, respawned during an outage). Only the record
        `seen` before that read: one another worker wrote meanwhile records the model published
        again, which exists (each write replaces the file: a new inode)."""
        self._written.pop(str(ref), None)
        if seen is None or self.seen(ref) != seen:
            return
        try:
            self.path(ref).unlink(missing_ok=True)
        except OSError as exc:  # a cache that cannot be written: said, as a write is
            self._unwritable.failed(f"cannot remove the record of {ref} in {self.folder} ({exc})")

    def read(self, ref: ModelRef) -> ModelManifest | None:
        """The manifest `ref` last served here, or None: none recorded, or one that cannot be
        trusted (said in a line: not this store's, not this reference's, damaged)."""
        path = self.path(ref)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            manifest = ModelManifest.from_dict(record["manifest"])
            problem = self._problem(ref, record, manifest)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AiaasError) as exc:
            problem = f"it cannot be read ({exc})"
        if problem is not None:
            log.warning("the local record %s of %s is not used: %s", path, ref, problem)
            return None
        return manifest

    def _problem(self, ref: ModelRef, record: Any, manifest: ModelManifest) -> str | None:
        if record.get("store") != self.store_uri:
            return f"it is the record of store {record.get('store')!r}"
        if record.get("ref") != str(ref) or manifest.name != ref.name:
            return f"it records {record.get('ref')!r} ({manifest.name}:{manifest.version})"
        if ref.version not in (None, manifest.version) or record.get("version") != manifest.version:
            return f"its version {record.get('version')!r} is not its manifest's"
        if record.get("sha256") != file_digests(manifest):
            return "its sha256s are not its manifest's"
        return None

    def models(self) -> list[str]:
        """The models with a record here, sorted (what a restarted `aiaas serve` may serve
        while the store is away)."""
        found = set()
        with contextlib.suppress(OSError):
            for path in self.folder.glob("*.json"):
                name = path.name.removesuffix(".json").split("@")[0].split(":")[0]
                if names.is_model_name(name):
                    found.add(name)
        return sorted(found)
