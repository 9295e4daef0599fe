"""`aiaas publish --version V` run again: the same files are no conflict.

A retried CI job publishes the version it already published. Versions are immutable, so the
second run writes nothing; when the stored version was published from the same files and
serves them the same way it exits 0 (as `pull` of a version already there, or `promote` to the
alias's own version), and only a different model under that name is the "already published"
error. The card is not compared: it holds the publish's time and notes, not what is served.
"""

from __future__ import annotations

from functions.runtime.artifact_files import files_to_publish
from functions.runtime.cache import sha256_file
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest
from functions.runtime.registry import Registry
from infra.cli.publish_options import Prepared

# What decides how a version answers (beside its files' bytes): a change in any is a new model.
SERVED = (
    "task",
    "inputs",
    "outputs",
    "labels",
    "features",
    "postprocessing",
    "preprocessing",
    "max_batch_size",
    "description",
)
CARD_FOLDER = "card/"


def published_alike(reg: Registry, prepared: Prepared) -> ModelManifest | None:
    """The stored manifest of `prepared`'s version when it holds the same files, served alike;
    None when the version is free, differs, or cannot be read (publishing then says which)."""
    manifest = prepared.manifest
    try:
        stored = reg.manifest(manifest.name, manifest.version)
    except AiaasError:
        return None
    if stored.file.sha256 != manifest.file.sha256:
        return None
    if any(getattr(stored, field) != getattr(manifest, field) for field in SERVED):
        return None
    ours = files_to_publish(prepared.model, prepared.extra_files)
    theirs = {f.path: f.sha256 for f in stored.files if not f.path.startswith(CARD_FOLDER)}
    if set(ours) != set(theirs):
        return None
    if any(sha256_file(path) != theirs[rel] for rel, (path, _) in ours.items()):
        return None
    return stored
