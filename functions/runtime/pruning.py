"""Deleting old versions (`aiaas prune`): which may go, and deleting them so that no reader ever
sees half a version.

Never deleted: the version any alias points at, its canary (a weighted alias's second
version), its shadow, the version a rollback of it would go to, a running rollout's baseline
and candidate (and the shadow it puts back), the version a sharded batch run in flight pinned
(batch/pinned.py), the latest version (what a bare name serves), and the `keep` most recently
published. An alias or rollout record that cannot be read stops
the prune: what it protects is unknown.

A version goes manifest first (the manifest is what makes it exist: from then on every reader
gets a clean "not found"), then its other files. The run is recorded (`prune_log`) before the
first manifest goes, so a prune killed midway leaves manifest-less files a rerun recognises as
its own and removes (listings already ignore them). A version folder a publish killed outright
left without a manifest goes too, once abandoned (killed_publishes.py). An alias moved onto a version while its
manifest was being deleted gets the manifest back (the files are still there): so one version
is deleted by one run only, which the record claims (`prune_log.CLAIM_S`); another prune
planned at the same time keeps it.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from functions.runtime import names
from functions.runtime.aliases import AliasTarget, rollback_target
from functions.runtime.batch.pinned import pinned_versions
from functions.runtime.errors import (
    AiaasError,
    BadRequest,
    Conflict,
    CorruptRecord,
    NotFound,
    StoreError,
)
from functions.runtime.killed_publishes import (
    LEFT_YOUNG,
    abandoned_folders,
    remove_abandoned_folders,
)
from functions.runtime.manifest import MANIFEST_FILE, ModelManifest, utc_now
from functions.runtime.prune_log import (
    pruned_versions,
    record_prune,
    version_not_found,
    withdraw_prune,
)
from functions.runtime.refs import (
    DEFAULT_ALIAS,
    manifest_key,
    model_prefix,
    number_key,
    version_prefix,
    version_sort_key,
)
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import ObjectExists, ObjectStore

READERS = 16  # manifests read at once (S3: one GET each)


@dataclass(frozen=True)
class Doomed:
    """A version to delete: its manifest as stored (to put back if an alias moves onto it)."""

    version: str
    created_at: str
    keys: tuple[str, ...]  # every object under its folder, the manifest included
    size: int  # bytes of its files: those its manifest lists, and those it does not (stored)
    manifest: bytes = field(repr=False)


@dataclass(frozen=True)
class PrunePlan:
    name: str
    delete: tuple[Doomed, ...]
    kept: dict[str, list[str]]  # version -> why it stays
    leftovers: dict[str, tuple[str, ...]]  # an earlier prune's manifest-less files, by version
    # a killed publish's manifest-less folder (and number claim), by version
    abandoned: dict[str, tuple[str, ...]] = field(default_factory=dict)


def protected(registry: Registry, name: str, versions: list[str]) -> dict[str, list[str]]:
    """Version -> why no prune may delete it (aliases, rollouts, the latest)."""
    why: dict[str, list[str]] = {}
    production = False
    prefix = f"{model_prefix(name)}/aliases/"
    for key in registry.store.list_keys(prefix.rstrip("/")):
        alias = key[len(prefix) :].removesuffix(".json")
        if not key.endswith(".json") or not names.is_alias_name(alias):
            continue  # not an alias record: points at nothing
        record = registry.alias_record(name, alias)  # corrupt: CorruptRecord stops the prune
        if record is None:
            continue
        production = production or alias == DEFAULT_ALIAS
        target = AliasTarget.of(record)
        why.setdefault(target.version, []).append(f"@{alias}")
        if target.canary is not None:
            why.setdefault(target.canary, []).append(f"@{alias} canary ({target.weight:.4g})")
        if target.shadow is not None:
            why.setdefault(target.shadow.version, []).append(f"@{alias} shadow")
        try:
            back = rollback_target(name, alias, record, None)
        except Conflict:
            back = AliasTarget(target.version)  # nothing to roll back to
        for version in (back.version, back.canary):  # a restored split: both
            if version is not None and not target.serves(version):
                why.setdefault(version, []).append(f"@{alias} rollback target")
    for rollout in RolloutBook(registry.store).all(name):
        if rollout.running:
            where = f"rollout on @{rollout.alias}"
            why.setdefault(rollout.baseline, []).append(f"{where} baseline")
            why.setdefault(rollout.candidate, []).append(f"{where} candidate")
            if rollout.prior_shadow is not None:
                why.setdefault(rollout.prior_shadow.version, []).append(f"{where} prior shadow")
    for version, runs in pinned_versions(registry.store, name).items():
        for run_id in runs:
            why.setdefault(version, []).append(f"pinned by sharded batch run {run_id} in flight")
    if versions:
        # A bare name serves @production where it is set, else the newest version.
        serves = f"what `{name}` alone serves"
        if production:
            serves += f" once @{DEFAULT_ALIAS} is removed"
        why.setdefault(versions[-1], []).append(f"latest ({serves})")
    return why


def plan_prune(
    registry: Registry,
    name: str,
    keep: int,
    older_than_days: float | None = None,
    now: datetime | None = None,
) -> PrunePlan:
    """What a prune keeping the `keep` newest (and, with `older_than_days`, anything younger)
    deletes, and why each other version stays."""
    if keep < 0 or (older_than_days is not None and not older_than_days >= 0):
        raise BadRequest("--keep and --older-than must be 0 or more")
    name = names.model_name(name)
    versions = registry.versions(name)
    keys = _keys_by_version(registry, name)
    guarded = protected(registry, name, versions)
    read = _read_manifests(registry, name, versions)
    kept: dict[str, list[str]] = {}
    readable = []
    for version, found in read.items():
        if isinstance(found, CorruptRecord):
            kept[version] = [*guarded.get(version, []), "corrupt manifest (not judged)"]
        else:
            readable.append(found)
    readable.sort(key=lambda pair: (_created(pair[0]), version_sort_key(pair[0].version)))
    cutoff = None
    if older_than_days is not None:
        cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
    delete = []
    doomed: list[tuple[ModelManifest, bytes, tuple[str, ...]]] = []
    for rank, (manifest, raw) in enumerate(reversed(readable)):  # the newest first
        version = manifest.version
        why = list(guarded.get(version, []))
        if rank < keep:
            why.append(f"one of the {keep} newest")
        if cutoff is not None and _created(manifest) > cutoff:
            why.append(f"younger than {older_than_days:g} days")
        if why:
            kept[version] = why
            continue
        doomed.append((manifest, raw, keys.get(version, ())))
    sizes = _sizes(registry.store, [(manifest, files) for manifest, _, files in doomed])
    for (manifest, raw, files), size in zip(doomed, sizes, strict=True):
        delete.append(Doomed(manifest.version, manifest.created_at, files, size, raw))
    pruned = pruned_versions(registry.store, name)
    leftovers: dict[str, tuple[str, ...]] = {}
    for v, files in keys.items():
        if v in pruned and manifest_key(name, v) not in files and v not in versions:
            if v in guarded:  # a prune stopped before it could put back the manifest of a
                # version an alias moved onto: the files are what remains of it
                kept[v] = [*guarded[v], "its manifest is gone (a stopped prune): files kept"]
            else:
                leftovers[v] = files
    skip = {*versions, *pruned, *guarded}
    abandoned, young = abandoned_folders(registry.store, name, keys, skip)
    kept.update({version: [LEFT_YOUNG] for version in young})
    order = {v: i for i, v in enumerate(versions)}
    delete.sort(key=lambda d: order[d.version])
    return PrunePlan(name, tuple(delete), kept, leftovers, abandoned)


def plan_removal(registry: Registry, name: str, version: str) -> PrunePlan:
    """A plan deleting the one version `name:version`; Conflict naming why when it is kept."""
    name, version = names.model_name(name), names.version_name(version)
    versions = registry.versions(name)
    if version not in versions:  # "was deleted (pruned)" when it was, as reading it says
        raise version_not_found(registry.store, name, version)
    why = protected(registry, name, versions).get(version)
    if why:
        raise Conflict(
            f"version {version!r} of model {name!r} is kept: {', '.join(why)}; move what "
            "needs it to another version first"
        )
    found = _read_manifests(registry, name, [version])[version]
    keys = tuple(registry.store.list_keys(version_prefix(name, version)))
    if isinstance(found, CorruptRecord):  # a broken version may go: nothing can serve it
        raw = registry.store.get_bytes(manifest_key(name, version))
        return PrunePlan(name, (Doomed(version, "", keys, 0, raw),), {}, {})
    manifest, raw = found
    (size,) = _sizes(registry.store, [(manifest, keys)])
    return PrunePlan(name, (Doomed(version, manifest.created_at, keys, size, raw),), {}, {})


def carry_out(registry: Registry, plan: PrunePlan, actor: str) -> PrunePlan:
    """Delete what `plan` deletes (manifests first) and its leftovers; the plan as done: a
    version an alias moved onto meanwhile is kept, its manifest put back. Manifests the store
    would not delete (S3's per-key errors, retried) leave their versions whole: taken out of
    the record (the whole run when none went: its claim kept reruns off for CLAIM_S), the rest
    finished, then the store's error, naming which versions stayed. An empty plan only sweeps
    what no plan names (`_sweep`)."""
    store, name = registry.store, plan.name
    if not (plan.delete or plan.leftovers or plan.abandoned):
        _sweep(store, name)
        return plan
    run, kept = secrets.token_hex(8), dict(plan.kept)
    plan, entry = _claim(registry, plan, actor, run, kept)
    failed: AiaasError | None = None
    try:
        store.delete_many([manifest_key(name, d.version) for d in plan.delete])
    except AiaasError as exc:
        failed = exc
    try:
        now = registry.versions(name, missing_ok=True)
        now_kept = protected(registry, name, now)
    except AiaasError:
        if failed is None:
            raise
        raise failed from None  # which stayed cannot be told: the claim stays, as a killed run's
    back = [d for d in plan.delete if d.version in now_kept]
    for doomed in back:  # promoted while its manifest went: it exists again, whole
        # Only where none is (the role may create a manifest, never replace one); one there
        # already: another prune put the same bytes back first.
        with contextlib.suppress(ObjectExists):
            store.put_bytes(manifest_key(name, doomed.version), doomed.manifest, if_absent=True)
    stayed = [d for d in plan.delete if failed and d.version in now and d not in back]
    gone = tuple(d for d in plan.delete if d not in back and d not in stayed)
    if failed is not None and not gone:
        withdraw_prune(store, name, run, [d.version for d in plan.delete])
        raise _stopped(name, gone, plan.delete, failed)
    if back or stayed:  # recorded before the files go: a failure there leaves it right
        dropped = tuple(d.version for d in (*back, *stayed))
        done = {**entry, "versions": [d.version for d in gone], "kept_after_all": list(dropped)}
        done.update(files=sum(len(d.keys) for d in gone), bytes=sum(d.size for d in gone))
        record_prune(store, name, done, dropped, claim=False)
    store.delete_many([k for d in gone for k in d.keys if not k.endswith(f"/{MANIFEST_FILE}")])
    store.delete_many(_claims_of(store, name, [d.version for d in gone]))
    # a leftover back (another prune put its manifest back: an alias moved onto it) stays
    left = {v: found for v, found in plan.leftovers.items() if v not in now and v not in now_kept}
    store.delete_many([k for found in left.values() for k in found])
    killed = remove_abandoned_folders(store, name, plan.abandoned)
    _sweep(store, name)
    if failed is not None and stayed:  # (none: every manifest went, the answer was lost)
        raise _stopped(name, gone, stayed, failed)
    for doomed in back:
        kept[doomed.version] = [*now_kept[doomed.version], "(moved onto it during the prune)"]
    return PrunePlan(name, gone, kept, left, killed)


def _sweep(store: ObjectStore, name: str) -> None:
    """What no listing shows and no plan names: killed writers' temp files, older releases'
    lock files, and a directory store's version folders that hold nothing (a publish killed
    outright, or stopped before this release removed its folder: each took a number)."""
    store.remove_abandoned(f"{model_prefix(name)}/versions", empty_folders=True)


def _stopped(
    name: str, gone: Iterable[Doomed], stayed: Iterable[Doomed], failed: AiaasError
) -> AiaasError:
    """The one line for a prune the store stopped: what went, what stayed whole, and why."""
    went = f"deleted version(s) {_listed(gone)}; " if gone else "deleted nothing; "
    message = (
        f"the prune of {name!r} {went}version(s) {_listed(stayed)} are intact (run it again): "
        f"{failed.message}"
    )
    return type(failed)(message) if isinstance(failed, StoreError) else AiaasError(message)


def _listed(doomed: Iterable[Doomed]) -> str:
    versions = [d.version for d in doomed]
    more = f" and {len(versions) - 8} more" if len(versions) > 8 else ""
    return ", ".join(versions[:8]) + more


def _claims_of(store: ObjectStore, name: str, versions: list[str]) -> list[str]:
    """The number claims (`number_key`) these versions hold: gone with them, as the prune log
    keeps the number from being reused in any spelling (`check_no_twin`); else each pruned
    number left a file for ever. Not a claim another spelling holds (an older store's twin)."""
    held = []
    for version in (v for v in versions if v.isdigit()):
        with contextlib.suppress(NotFound):
            if store.get_bytes(number_key(name, version)).decode() == version:
                held.append(number_key(name, version))
    return held


def _claim(
    registry: Registry, plan: PrunePlan, actor: str, run: str, kept: dict[str, list[str]]
) -> tuple[PrunePlan, dict[str, object]]:
    """The run recorded, claiming its versions: the plan without those another prune is
    deleting now (added to `kept`, saying which run), and the entry as recorded."""
    delete = plan.delete
    while True:
        entry: dict[str, object] = {
            "id": run,
            "deleted_at": utc_now(),
            "deleted_by": actor,
            "versions": [d.version for d in delete],
            "files": sum(len(d.keys) for d in delete),
            "bytes": sum(d.size for d in delete),
        }
        if not delete:
            return PrunePlan(plan.name, delete, kept, plan.leftovers, plan.abandoned), entry
        taken = record_prune(registry.store, plan.name, entry)
        if not taken:
            return PrunePlan(plan.name, delete, kept, plan.leftovers, plan.abandoned), entry
        kept.update({version: [why] for version, why in taken.items()})
        delete = tuple(d for d in delete if d.version not in taken)


def _sizes(store: ObjectStore, versions: list[tuple[ModelManifest, tuple[str, ...]]]) -> list[int]:
    """Bytes of each version's files: the sizes its manifest lists, and each file it does not
    list as the store has it: a version published before manifests listed files (2026-11-30:
    its card, background and tokenizer) and what `aiaas baseline` added to a version later.
    Counted as listed only, such a version's prune said "0.4 MB" for the 0.5 MB it deleted."""
    unlisted: list[tuple[int, str]] = []
    for index, (manifest, keys) in enumerate(versions):
        prefix = version_prefix(manifest.name, manifest.version) + "/"
        listed = {MANIFEST_FILE, manifest.file.path, *(f.path for f in manifest.files)}
        unlisted += [(index, key) for key in keys if key.removeprefix(prefix) not in listed]

    def stored(key: str) -> int:
        try:
            return store.head(key).size
        except NotFound:  # gone meanwhile (another prune): 0 bytes
            return 0

    sizes = [m.file.size + sum(f.size for f in m.files) for m, _ in versions]
    if unlisted:  # S3: a HEAD each, READERS at once
        with ThreadPoolExecutor(READERS) as pool:
            heads = pool.map(stored, [key for _, key in unlisted])
            for (index, _), size in zip(unlisted, heads, strict=True):
                sizes[index] += size
    return sizes


def _keys_by_version(registry: Registry, name: str) -> dict[str, tuple[str, ...]]:
    """Every object under `models/<name>/versions/`, by version: one listing (paged on S3)."""
    prefix = f"{model_prefix(name)}/versions/"
    found: dict[str, list[str]] = {}
    for key in registry.store.list_keys(prefix.rstrip("/")):
        version, _, rest = key[len(prefix) :].partition("/")
        if rest:
            found.setdefault(version, []).append(key)
    return {v: tuple(keys) for v, keys in found.items()}


def _read_manifests(
    registry: Registry, name: str, versions: Iterable[str]
) -> dict[str, tuple[ModelManifest, bytes] | CorruptRecord]:
    def read(version: str) -> tuple[ModelManifest, bytes] | CorruptRecord:
        raw = registry.store.get_bytes(manifest_key(name, version))
        try:
            return ModelManifest.from_json(raw, stored_as=(name, version)), raw
        except AiaasError as exc:  # a broken manifest: that version is not judged, not deleted
            return CorruptRecord(f"version {version!r} has a corrupt manifest: {exc.message}")

    with ThreadPoolExecutor(READERS) as pool:
        versions = list(versions)
        return dict(zip(versions, pool.map(read, versions), strict=True))


def _created(manifest: ModelManifest) -> datetime:
    try:
        when = datetime.fromisoformat(manifest.created_at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # undated: never "older than"
    return when if when.tzinfo else when.replace(tzinfo=UTC)
