"""A version's files read beside its model (the explain background, the drift baseline), checked
as its model file is: against the size and sha256 its manifest lists, by the same fetch
(`transfer.fetch_verified`), so a file changed in the store after publishing is an
IntegrityError ("model m:1's background.json failed its integrity check and is not used"),
never used.

The manifest is written last and never replaced, so what it lists cannot be swapped by whoever
may write the version's other files (a training job's role may: docs/deploy.md). A file the
manifest does not list (one `aiaas baseline` added after publishing, or any file of a version
published before manifests listed files) has no digest to check and is read as stored:
docs/registry.md says so.
"""

from __future__ import annotations

from functions.runtime.errors import IntegrityError
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import version_prefix
from functions.runtime.settings import TransferSettings
from functions.runtime.store import ObjectStore
from functions.runtime.transfer import MemorySink, fetch_verified
from functions.runtime.version_files import ArtifactFile


def listed(manifest: ModelManifest, rel: str) -> ArtifactFile | None:
    """The manifest's entry for the version's file `rel`, None when it lists none."""
    return next((f for f in manifest.files if f.path == rel), None)


def read_version_file(store: ObjectStore, manifest: ModelManifest, rel: str) -> bytes:
    """The bytes of the version's file `rel`: NotFound when it has none; IntegrityError when
    the manifest lists it and the stored file is not that file (another size or sha256)."""
    key = f"{version_prefix(manifest.name, manifest.version)}/{rel}"
    entry = listed(manifest, rel)
    if entry is None:
        return store.get_bytes(key)
    ref = f"{manifest.name}:{manifest.version}"
    sink = MemorySink(entry.size)
    try:
        fetch_verified(store, key, entry.size, entry.sha256, sink, TransferSettings())
        return bytes(sink.view())
    except IntegrityError as exc:  # named as the model's own refusal names it (cache.py)
        raise IntegrityError(
            f"{ref}: {exc.message}",
            public_message=f"model {ref}'s {rel} failed its integrity check and is not used",
        ) from exc
    finally:
        sink.release()
