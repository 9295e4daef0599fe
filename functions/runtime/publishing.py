"""Publishing one immutable version: every file checked, uploaded, the manifest written last.

A version exists once its manifest does. Every file is checked before the first upload (the
model's sha256, each external data file the model names present, a pulled version's files
equal to its manifest's), so a bad publish writes nothing; one cut off mid-upload leaves files
but no manifest, and a retry with the same files completes it. The model and its weights are
claimed only if absent: a concurrent publisher of other bytes under the same version loses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from functions.runtime.artifact_files import describe_files
from functions.runtime.cache import sha256_file, sha256_stream
from functions.runtime.errors import BadRequest, VersionExists
from functions.runtime.manifest import ArtifactFile, ModelManifest
from functions.runtime.refs import extra_file_name, manifest_key, model_key, version_prefix
from functions.runtime.store import ObjectExists, ObjectStore


def publish_version(
    store: ObjectStore, manifest: ModelManifest, model_file: Path, extra_files: Mapping[str, Path]
) -> ModelManifest:
    """Store `manifest`'s version; returns the manifest as stored, listing every file."""
    name, version = manifest.name, manifest.version
    extras = {extra_file_name(rel): Path(path) for rel, path in extra_files.items()}
    if sha256_file(model_file) != manifest.file.sha256:
        raise BadRequest(
            f"{model_file} does not match the sha256 in the manifest of {name}:{version}"
        )
    manifest = replace(manifest, files=_checked_files(manifest, model_file, extras))
    if store.exists(manifest_key(name, version)):
        raise VersionExists(f"{name}:{version} is already published; versions are immutable")
    _claim(store, manifest, model_key(name, version), model_file, manifest.file.sha256)
    for item in manifest.files:
        key = f"{version_prefix(name, version)}/{item.path}"
        if item.role == "weights":  # the model's own data: claimed like the model file
            _claim(store, manifest, key, model_file.parent / item.path, item.sha256)
        else:
            store.upload_file(extras[item.path], key)
    try:
        store.put_bytes(manifest_key(name, version), manifest.to_json().encode(), if_absent=True)
    except ObjectExists:
        raise VersionExists(
            f"{name}:{version} was published concurrently; versions are immutable"
        ) from None
    return manifest


def _claim(store: ObjectStore, manifest: ModelManifest, key: str, local: Path, sha: str) -> None:
    # Written only if absent: a losing concurrent publisher must never replace a file the
    # winner's manifest vouches for (that version could never be served).
    try:
        store.upload_file(local, key, if_absent=True)
    except ObjectExists:
        with store.open_read(key) as stored:
            if sha256_stream(stored) == sha:
                return  # the same file: a retry after an interrupted publish, or a twin
        raise VersionExists(
            f"{manifest.name}:{manifest.version} is being published with a different "
            f"{key.rsplit('/', 1)[-1]}, or an earlier publish of it was interrupted; versions "
            "are immutable: publish another version"
        ) from None


def _checked_files(
    manifest: ModelManifest, model_file: Path, extras: Mapping[str, Path]
) -> tuple[ArtifactFile, ...]:
    """The version's other files as found on disk; BadRequest when the manifest already lists
    files (a pulled version) and one differs, or when a data file the model names is missing."""
    found = describe_files(model_file, extras)
    listed = {f.path: f for f in manifest.files}
    for item in found:
        claimed = listed.get(item.path)
        if claimed is not None and (claimed.sha256, claimed.size) != (item.sha256, item.size):
            raise BadRequest(
                f"{item.path} of {manifest.name}:{manifest.version} has sha256 {item.sha256} "
                f"({item.size} bytes); its manifest says {claimed.sha256} ({claimed.size} bytes)"
            )
    missing = sorted(set(listed) - {f.path for f in found})
    if missing:
        raise BadRequest(
            f"the manifest of {manifest.name}:{manifest.version} lists {missing[0]}, which is "
            "not among the files being published"
        )
    return found
