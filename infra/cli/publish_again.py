"""`aiaas publish --version V` run again: the same files are no conflict.

A retried CI job publishes the version it already published. Versions are immutable, so the
second run writes nothing; when the stored version was published from the same files and
serves them the same way it exits 0 (as `pull` of a version already there, or `promote` to the
alias's own version), and only a different model under that name is the "already published"
error. The card is not compared: it holds the publish's time and notes, not what is served.

That comparison needs the finished files (a variant, a tokenizer embedded), so a taken version
that cannot be this publish's is refused first (`refuse_taken`), from what is known before any
work: the source file's sha256 against the stored file's, or against the source the stored
variant's quantization record names. It said "already published" only after quantizing and
evaluating (37 s for a 2.3 GB model).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from functions.runtime.artifact_files import files_to_publish
from functions.runtime.errors import AiaasError, NotFound, VersionExists
from functions.runtime.file_hashes import sha256_file
from functions.runtime.manifest import ModelManifest
from functions.runtime.prune_log import pruned_versions
from functions.runtime.publishing import check_version_free
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


def refuse_taken(
    reg: Registry, name: str, version: str, source: Path, *, quantize: str | None, text: bool
) -> None:
    """VersionExists, before any work, when `name:version` is taken by a model this publish of
    `source` cannot make (`quantize`: its method; `text`: a tokenizer is embedded, so the file
    published is made later). A free or unreadable version passes: the full comparison, or
    publishing, then decides."""
    try:
        stored = reg.manifest(name, version)
    except NotFound:
        try:
            check_version_free(reg.store, name, version)  # a pruned version is never reused
            return
        except VersionExists:
            if version in pruned_versions(reg.store, name):
                raise
        # Published between the two reads (a twin run of this publish, in the same second):
        # judged as if it had been read first, so a twin of the same file is not refused here.
        try:
            stored = reg.manifest(name, version)
        except AiaasError:
            return
    except AiaasError:
        return
    if not _may_be_from(stored, sha256_file(source), quantize, text):
        raise VersionExists(f"{name}:{version} is already published; versions are immutable")


def _may_be_from(stored: ModelManifest, sha256: str, quantize: str | None, text: bool) -> bool:
    """Whether `stored` may hold what publishing the file of this `sha256` makes."""
    record: Any = stored.extras.get("quantization")
    if quantize is None:
        # Not a variant, then the file itself (or, with a tokenizer, the file it is put into).
        return record is None and (text or stored.file.sha256 == sha256)
    if not isinstance(record, dict) or record.get("method") != quantize:
        return False
    source = record.get("source")
    recorded = source.get("sha256") if isinstance(source, dict) else None
    return recorded is None or recorded == sha256
