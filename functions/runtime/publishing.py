"""Publishing one immutable version: every file checked, uploaded, the manifest written last.

A version exists once its manifest does. Each file is read once: its bytes are hashed as they
are sent and staged in the store (an uncompleted multipart upload, a temp file), and none
becomes visible until every file is staged and checked (the model's sha256 against its
manifest's, each external data file present, a pulled version's files equal to its manifest's).
So a bad publish leaves nothing, and the manifest vouches for exactly the bytes stored. One
cut off mid-commit leaves files but no manifest, and a retry with the same files completes it.
Each publish writes its own `publish_id` in the manifest, so a conditional write of the
manifest that meets one tells this publish's retried write from a twin's (the same files, the
same second): the twin loses. The model and its weights are claimed only if absent: a concurrent publisher of other bytes
under the same version loses. The other files (card, tokenizer, ...) may replace what an
interrupted publish left, but only if unchanged since this publish found the version free: a
concurrent twin (the same model.onnx, another card) loses rather than replace the card that
the winner's manifest vouches for. One window is left, as no store compares two keys in one
write: a twin that finds the winner's card sent but its manifest not yet written takes the
card for an interrupted publish's and replaces it, then loses the manifest; it then puts back
the bytes it replaced (read before replacing them), so only a twin killed between the two
leaves a card its version's manifest does not vouch for (pull refuses it; nothing serves it):
one stopped puts the bytes back too, and the winner checks its cards after its manifest.
A publish that does not finish removes what it wrote unless a manifest lists it, and puts back
what a twin's manifest came to list meanwhile (publish_kept.py).
A numeric version also claims its number (`versions/.number-<int>`, written only if absent,
holding the spelling) before any file becomes visible: `8` and `008` published at once both checked
that no twin existed, and both published; now the second spelling to claim the number loses.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from functions.runtime import names
from functions.runtime.artifact_files import files_to_publish
from functions.runtime.errors import BadRequest, NotFound, VersionExists
from functions.runtime.file_hashes import sha256_stream
from functions.runtime.manifest import ArtifactFile, ModelManifest
from functions.runtime.manifest_fields import check_labels
from functions.runtime.prune_log import pruned_versions
from functions.runtime.publish_kept import (
    Replaced,
    Source,
    keep_taken,
    put_back_replaced,
    read_kept,
    unclaim,
)
from functions.runtime.publish_listed import check_listed, checked_files
from functions.runtime.refs import (
    extra_file_name,
    manifest_key,
    model_key,
    model_prefix,
    number_key,
    version_prefix,
)
from functions.runtime.store import (
    CHUNK,
    Moved,
    ObjectChanged,
    ObjectExists,
    ObjectStore,
    StagedObject,
    StagedUpload,
    holds,
)
from functions.runtime.write_answer import to_its_answer

NUMBER_TRIES = 10  # publishers racing for the next number: each loss moves one number on


def check_version_free(store: ObjectStore, name: str, version: str) -> None:
    """Refuse a version that exists: versions are immutable (training asks before it trains)."""
    if store.exists(manifest_key(name, version)):
        raise VersionExists(f"{name}:{version} is already published; versions are immutable")
    if version in pruned_versions(store, name):
        raise VersionExists(
            f"{name}:{version} was published and pruned (`aiaas versions {name}` shows when); "
            "a version name is never reused, so a caller pinned to it never gets another model"
        )


def check_no_twin(store: ObjectStore, name: str, version: str) -> None:
    """Refuse a numeric version another version already is (`008` beside `8`): both count as
    8, and a bare name then served whichever sorts last by text, not the one published last.
    Checked where a user names a new version (publish, training), not in `publish_version`:
    stores written before this check hold such twins, and pull copies them as they are."""
    if not version.isdigit() or store.exists(manifest_key(name, version)):
        return  # a name, or a retry of this very version (its own checks answer it)
    pruned = pruned_versions(store, name)
    for other in sorted({*store.list_dirs(f"{model_prefix(name)}/versions"), *pruned}):
        if not other.isdigit() or other == version or int(other) != int(version):
            continue
        if other in pruned:  # a number is never reused, however it is written
            raise VersionExists(
                f"{name}:{version} is version {int(version)}, as {name}:{other} was, which was "
                "published and pruned; a number is never reused: pick another, or none"
            )
        if store.exists(manifest_key(name, other)):  # not a folder a cut-off publish left
            raise VersionExists(
                f"{name}:{version} is version {int(version)}, as {name}:{other} already is; "
                "pick another number, or none to be given the next one"
            )
    _check_number(store, name, version)


def _check_number(store: ObjectStore, name: str, version: str) -> None:
    """Refuse `version` when another spelling of its number claimed it (`claim_number`)."""
    try:
        other = store.get_bytes(number_key(name, version)).decode()
    except NotFound:
        return
    if other == version:  # this very version: a retry, or a twin of the same spelling
        return
    if store.exists(manifest_key(name, other)):
        raise VersionExists(
            f"{name}:{version} is version {int(version)}, as {name}:{other} already is; "
            "pick another number, or none to be given the next one"
        )
    raise VersionExists(
        f"{name}:{version} is version {int(version)}, which a publish of {name}:{other} "
        f"claimed (still running, or cut off: publish {name}:{other} again to finish it); "
        "pick another number, or none to be given the next one"
    )


def claim_number(store: ObjectStore, name: str, version: str, committed: list[str]) -> None:
    """Claim a numeric version's number for this spelling, only if unclaimed: the twin check
    reads before the work, so `8` and `008` published at once both passed it. Made before
    any file is visible and removed with them (`committed`) by a publish that does not finish,
    so only one killed outright between the claim and its manifest leaves it."""
    if not version.isdigit():
        return
    key = number_key(name, version)
    written: list[None] = []
    committed.append(key)  # from before the write, as each file (`_commit`)
    try:
        to_its_answer(
            lambda: store.put_bytes(key, version.encode(), if_absent=True), written.append
        )
    except BaseException as exc:
        if not written:
            committed.remove(key)
        if not isinstance(exc, ObjectExists):
            raise
        _check_number(store, name, version)  # ours (a retry met it), or a twin's: it wins


def publish_version(
    store: ObjectStore,
    manifest: ModelManifest,
    model_file: Path,
    extra_files: Mapping[str, Path],
    progress: Moved | None = None,
    *,
    copied: bool = False,
    on_written: Callable[[], object] | None = None,
) -> ModelManifest:
    """Store `manifest`'s version; returns the manifest as stored, listing every file.
    `progress` hears the bytes of each chunk or part sent (parts from several threads).
    `on_written` is told the moment the manifest's write is answered: the version exists, and
    a stop (SIGTERM, Ctrl-C) that lands from then on is answered by finishing, not raised.
    The manifest gets this publish's own `publish_id`, unless `copied` (a pull: the version
    another store published, whose id it keeps, so two pulls of it write the same manifest)."""
    name, version = manifest.name, names.new_version_name(manifest.version)
    if not copied:  # a pull copies a version published before labels were checked as it is
        manifest = replace(manifest, publish_id=uuid.uuid4().hex)
        try:  # `aiaas publish --labels` says it first; `train` and library callers here
            check_labels(manifest.labels)
        except ValueError as exc:
            raise BadRequest(f"{name}:{version}: {exc}") from None
    extras = {extra_file_name(rel): Path(path) for rel, path in extra_files.items()}
    wanted = files_to_publish(model_file, extras)
    check_listed(manifest, set(wanted))
    # What an interrupted publish left of the other files, read before the version is found
    # free: replaced only if still so (a twin publishing now changes them and we lose).
    found = {
        rel: store.version(f"{version_prefix(name, version)}/{rel}")
        for rel, (_, role) in wanted.items()
        if role != "weights"
    }
    check_version_free(store, name, version)
    # What an earlier publish killed midway left: temp files, and version folders left empty
    store.remove_abandoned(model_prefix(name), empty_folders=True)
    committed: list[str] = []  # the files this run wrote (not found there already)
    sources: dict[str, Source] = {}  # each file's local path and sha256, to put one back
    replaced: list[Replaced] = []  # the other files as this run wrote them (`_replace`)
    claim = not copied  # a pull copies twins an older store holds as they are
    written = (committed, sources, replaced)
    try:
        manifest = _send(
            store, manifest, model_file, wanted, found, written, progress, claim, on_written
        )
    except BaseException:  # Ctrl-C, SIGTERM, a failure: no version, so none of its files
        unclaim(store, name, version, committed, sources, replaced)
        # Over its own writes only, the bytes it replaced that a twin's manifest lists: the
        # twin's card, replaced before its manifest came (rev15 4)
        with contextlib.suppress(Exception):
            put_back_replaced(store, name, version, replaced)
        raise
    return manifest


def _send(
    store: ObjectStore,
    manifest: ModelManifest,
    model_file: Path,
    wanted: Mapping[str, tuple[Path, str]],
    found: Mapping[str, str | None],
    written: tuple[list[str], dict[str, Source], list[Replaced]],
    progress: Moved | None,
    claim: bool,
    on_written: Callable[[], object] | None = None,
) -> ModelManifest:
    """The files, then the manifest (last: it makes the version exist); with `claim`, its
    number first, once every file is staged and checked and before any is visible. Fills
    `written`: the keys this run wrote, each file's source, the other files as it wrote them
    (publish_kept.py)."""
    name, version = manifest.name, manifest.version
    committed, sources, replaced = written
    taken: list[str] = []  # files another run wrote with these bytes, which our manifest lists
    staged: dict[str, StagedUpload] = {}
    replacing: dict[str, _Replacing] = {}
    with contextlib.ExitStack() as stack:
        try:
            staged[model_key(name, version)] = model = store.stage_file(
                model_file, model_key(name, version), if_absent=True, progress=progress
            )
            if model.sha256 != manifest.file.sha256:
                raise BadRequest(
                    f"{model_file} does not match the sha256 in the manifest of {name}:{version}"
                )
            sources[model_key(name, version)] = (model_file, model.sha256)
            files = []
            for rel, (local, role) in wanted.items():
                key = f"{version_prefix(name, version)}/{rel}"
                if role == "weights":  # the model's own data is claimed like the model file
                    staged[key] = item = store.stage_file(
                        local, key, if_absent=True, progress=progress
                    )
                    files.append(ArtifactFile(rel, item.size, item.sha256, role))
                    sources[key] = (local, item.sha256)
                    continue
                target = stack.enter_context(store.open_staged(key))
                replacing[key] = other = _Replacing(target, found[rel], *_copy(local, target))
                sources[key] = (local, other.sha256)
                files.append(ArtifactFile(rel, other.size, other.sha256, role))
            manifest = replace(manifest, files=checked_files(manifest, tuple(files)))
            if claim:
                claim_number(store, name, version, committed)
            for key, item in staged.items():
                _commit(store, manifest, key, item, (committed, taken))
            for key, other in replacing.items():
                _replace(store, manifest, key, other, (committed, taken), replaced)
                if progress is not None:  # sent only now (to S3: spooled until then)
                    progress(other.size)
        finally:
            for item in staged.values():
                item.abort()  # nothing, for those committed
    data = manifest.to_json().encode()
    told: list[bool] = []

    def exists(_: object) -> None:  # published: a stop now must not say "interrupted" (rev15 3)
        told.append(on_written is not None)
        if on_written is not None:
            on_written()

    try:
        to_its_answer(
            lambda: store.put_bytes(manifest_key(name, version), data, if_absent=True), exists
        )
    except KeyboardInterrupt:  # a stop that landed while the write was answered
        if not any(told):
            raise
    except ObjectExists:
        if holds(store, manifest_key(name, version), data):
            # Our own write (its publish_id is this publish's): it landed, its answer was lost,
            # and the SDK's retry met it (S3's 412). A twin publishing the same file in the same
            # second wrote another id, and loses: a numbered publish then takes the next number.
            keep_taken(store, name, version, taken, sources, replaced)
            return manifest
        put_back_replaced(store, name, version, replaced)
        raise VersionExists(
            f"{name}:{version} was published concurrently; versions are immutable"
        ) from None
    keep_taken(store, name, version, taken, sources, replaced)  # a stopped twin's doing
    return manifest


@dataclass(frozen=True)
class _Replacing:
    """One of a version's other files, staged to replace `expect` (None: no file)."""

    target: StagedObject
    expect: str | None
    sha256: str
    size: int


def _copy(local: Path, target: StagedObject) -> tuple[str, int]:
    """`local` written to `target`: its sha256 and size (the file read once)."""
    digest, size = hashlib.sha256(), 0
    with local.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.file.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _replace(
    store: ObjectStore,
    manifest: ModelManifest,
    key: str,
    other: _Replacing,
    lists: tuple[list[str], list[str]],
    replaced: list[Replaced],
) -> None:
    """Publish `other` over what this publish found; in `replaced` once written, with what it
    replaced, to put back if a twin wins the manifest, and its version: a cleanup removes it
    only while still so, and the winner checks it (publish_kept.py). A file it creates is in
    `committed`, as the model: a SIGTERM after the card went up left it, and its folder took a
    number. One a twin wrote with the same bytes is `taken`."""
    committed, taken = lists
    previous = None if other.expect is None else read_kept(store, key)
    created = other.expect is None
    if created:
        committed.append(key)
    landed: list[str] = []  # a stop waits for the answer: a twin's file is not ours to remove

    def wrote(version: str) -> None:
        landed.append(version)
        replaced.append(Replaced(key, other.sha256, version, previous))

    try:
        to_its_answer(lambda: other.target.publish(other.expect), wrote)
        return
    except BaseException as exc:
        if created and not landed:
            committed.remove(key)  # not written by this run: another's, or none
        if not isinstance(exc, ObjectChanged):
            raise
        with contextlib.suppress(NotFound), store.open_read(key) as stored:
            if sha256_stream(stored) == other.sha256:
                taken.append(key)
                return  # the same bytes: whoever wrote them, the manifests agree
        raise VersionExists(
            f"{manifest.name}:{manifest.version} is being published by another run (its "
            f"{key.rsplit('/', 1)[-1]} changed while this one sent its files); versions are "
            "immutable: publish another version"
        ) from None


def _commit(
    store: ObjectStore,
    manifest: ModelManifest,
    key: str,
    staged: StagedUpload,
    lists: tuple[list[str], list[str]],
) -> None:
    """Make the file visible, listed in `committed` (what this run wrote, which a publish that
    does not finish removes) from before the write: Ctrl-C while S3 completed the upload left
    the whole model stored, unlisted. Taken off again when the store did not write it; in
    `taken` when the store held the same bytes."""
    committed, taken = lists
    # Claimed files are written only if absent: a losing concurrent publisher must never
    # replace a file the winner's manifest vouches for (that version could never be served).
    committed.append(key)
    try:
        staged.commit()
        return
    except BaseException as exc:
        if not staged.written:
            committed.remove(key)
        if not isinstance(exc, ObjectExists):
            raise
    with store.open_read(key) as stored:
        if sha256_stream(stored) == staged.sha256:
            taken.append(key)
            return  # the same file: a retry after an interrupted publish, or a twin
    raise VersionExists(
        f"{manifest.name}:{manifest.version} is being published with a different "
        f"{key.rsplit('/', 1)[-1]}, or an earlier publish of it was interrupted; versions "
        "are immutable: publish another version"
    )
