"""The prune record: `models/<name>/pruned.json` names every version `aiaas prune` deleted,
and who deleted which when (newest first, up to PRUNE_HISTORY runs), as an alias record keeps
its moves.

It is written before the first manifest goes: a prune killed midway is named here, so a rerun
knows the manifest-less files it finds are its own leftovers, not a publish under way (whose
files also come before its manifest). Writing it is also a claim: a version another run
recorded within CLAIM_S is that run's to delete, and a second prune planned at the same time
leaves it alone. Two prunes deleting one version, each judging the aliases at its own moment,
could otherwise leave a version one of them put back (an alias moved onto it) without the
files the other deleted. A pruned version's name is never published again
(`publishing.check_version_free`, `Registry.next_version`): a caller pinned to `m:5` never
gets another model under that name.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from functions.runtime.errors import (
    AiaasError,
    Conflict,
    CorruptRecord,
    ModelNotFound,
    NotFound,
    VersionPruned,
)
from functions.runtime.refs import manifest_key, model_prefix
from functions.runtime.store_api import ObjectChanged, ObjectStore
from functions.runtime.version_spelling import same_number, spelled_otherwise

PRUNE_HISTORY = 100  # runs listed (the names of every pruned version are kept, a few bytes each)
WRITE_TRIES = 20
# How long a run's record claims its versions: a prune takes seconds (1,500 versions: well
# under a minute); a run killed after its record leaves them to a rerun after this.
CLAIM_S = 300.0


def prune_key(name: str) -> str:
    return f"{model_prefix(name)}/pruned.json"


def prune_record(store: ObjectStore, name: str) -> dict[str, Any]:
    """`{"pruned": [every version deleted], "history": [runs, newest first]}`; empty when none."""
    try:
        raw = store.get_bytes(prune_key(name))
    except NotFound:
        return {"pruned": [], "history": []}
    return _parse(name, raw)


def pruned_versions(store: ObjectStore, name: str) -> set[str]:
    return set(prune_record(store, name)["pruned"])


def claimed_numbers(store: ObjectStore, name: str) -> set[str]:
    """The numbers publishes claimed (`publishing.claim_number`, `versions/.number-<int>`): one
    cut off between its claim and its first file left the claim and no version folder, and
    every unnamed publish then picked that number and was refused ("pick another number, or
    none"), as was `train --publish`, whose role on AWS may not delete the claim."""
    folder, claim = f"{model_prefix(name)}/versions", ".number-"
    return {key.rpartition("/")[2].removeprefix(claim) for key in store.list_files(folder, claim)}


def record_prune(
    store: ObjectStore,
    name: str,
    entry: dict[str, Any],
    dropped: tuple[str, ...] = (),
    *,
    claim: bool = True,
) -> dict[str, str]:
    """Add a run (`entry`, its `versions`) to the record; `dropped`: versions an earlier entry
    of this run named that were kept after all (an alias moved to one meanwhile). With `claim`,
    nothing is written when another run recorded one of the versions within CLAIM_S: those
    versions are returned, each with what that run is (leave them out, and record again)."""

    def add(record: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
        taken = _claimed(record, entry) if claim else {}
        if taken:
            return None, taken
        history = [h for h in record["history"] if h.get("id") != entry["id"]]
        pruned = dict.fromkeys([*record["pruned"], *entry["versions"]])
        for version in dropped:
            pruned.pop(version, None)
        return {"pruned": list(pruned), "history": [entry, *history][:PRUNE_HISTORY]}, {}

    return _rewrite(store, name, add)


def withdraw_prune(store: ObjectStore, name: str, run: str, versions: list[str]) -> None:
    """Take run `run` out of the record, and `versions` (its own) out of the pruned: a run that
    deleted none of them (S3 refused the deletes) said it had, and its claim kept every rerun
    off them for CLAIM_S, though no prune was deleting them."""

    def take_back(record: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, str]]:
        history = [h for h in record["history"] if h.get("id") != run]
        pruned = [v for v in record["pruned"] if v not in versions]
        return {"pruned": pruned, "history": history}, {}

    _rewrite(store, name, take_back)


Change = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, dict[str, str]]]


def _rewrite(store: ObjectStore, name: str, change: Change) -> dict[str, str]:
    """Write the record as `change` makes it from the stored one (read again should another
    writer come first); `change`'s second value, when it writes nothing (its first is None)."""
    key = prune_key(name)
    for attempt in range(WRITE_TRIES):
        try:
            raw, etag = store.read_versioned(key)
            record = _parse(name, raw)
        except NotFound:
            record, etag = {"pruned": [], "history": []}, None
        new, taken = change(record)
        if new is None:
            return taken
        try:
            data = json.dumps(new, indent=2).encode()
            store.put_bytes(key, data, if_absent=etag is None, if_match=etag)
            return {}
        except (ObjectChanged, NotFound):
            time.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.25)))  # noqa: S311
    raise Conflict(f"the prune record of model {name!r} kept changing; try again")


def _claimed(record: dict[str, Any], entry: dict[str, Any]) -> dict[str, str]:
    """The versions of `entry` that another run, recorded within CLAIM_S, is deleting."""
    pruned, taken = set(record["pruned"]), {}
    for run in record["history"]:  # newest first: the run now deleting a version is named
        if run.get("id") == entry["id"] or not _recent(run.get("deleted_at"), entry):
            continue
        for version in run.get("versions", []):
            if version in entry["versions"] and version in pruned and version not in taken:
                taken[version] = (
                    f"another prune is deleting it (run {run.get('id')} by "
                    f"{run.get('deleted_by')}, started {run.get('deleted_at')})"
                )
    return taken


def _recent(stamp: object, entry: dict[str, Any]) -> bool:
    try:
        then = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        now = datetime.fromisoformat(str(entry["deleted_at"]).replace("Z", "+00:00"))
    except ValueError:
        return False  # an unreadable time claims nothing
    return abs((now - then).total_seconds()) < CLAIM_S


def _parse(name: str, raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
        pruned = [str(v) for v in doc["pruned"]]
        history = [h for h in doc["history"] if isinstance(h, dict)]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecord(
            f"the prune record {prune_key(name)} is corrupt: {exc}",
            public_message=f"the prune record of model {name!r} is corrupt in the registry",
        ) from exc
    return {"pruned": pruned, "history": history}


def deleted_by(store: ObjectStore, name: str, version: str) -> str:
    """Who deleted `name:version` and when, as a message says it (" (by ci at 2026-...Z)"); ""
    when the prune record does not name it (or cannot be read)."""
    try:
        runs = prune_record(store, name)["history"]
    except AiaasError:
        return ""
    for run in runs:
        if version in run.get("versions", []):
            return f" (by {run.get('deleted_by', 'unknown')} at {run.get('deleted_at', '?')})"
    return ""


def version_not_found(store: ObjectStore, name: str, version: str) -> ModelNotFound:
    """The 404 for `name:version` missing: one that says so when `aiaas prune` (or a
    control-plane delete) deleted it (a deployment pinned to it, warm or cold, then names the
    fix); the prune record is read only here, once the manifest is found missing."""
    try:
        record = prune_record(store, name)
    except AiaasError:  # a record that cannot be read: the plain 404 still holds
        return _not_found(store, name, version)
    if version not in record["pruned"]:
        return _not_found(store, name, version)
    return VersionPruned(
        f"version {version!r} of model {name!r} was deleted (pruned; `aiaas versions {name}` "
        "shows when): point the deployment at an alias (@production) or a published version",
        settled=_settled(record, version),
    )


def _not_found(store: ObjectStore, name: str, version: str) -> ModelNotFound:
    """The plain 404, naming the published spelling of a number written otherwise (`02` for a
    published `2`: version_spelling.py); the versions are listed only for a missing number."""
    said = f"version {version!r} of model {name!r} not found"
    if not version.isdigit():
        return ModelNotFound(said)
    try:
        folders = store.list_dirs(f"{model_prefix(name)}/versions")
        others = [v for v in same_number(version, folders) if store.exists(manifest_key(name, v))]
    except AiaasError:  # a listing that fails: the plain 404 still holds
        return ModelNotFound(said)
    return ModelNotFound(said + spelled_otherwise(name, version, others))


def _settled(record: dict[str, Any], version: str) -> bool:
    """Whether `version` is gone for good: the run that deleted it ended over CLAIM_S ago (or
    left the history). Within its run a prune puts back a manifest an alias moved onto
    (`pruning.carry_out`), and drops the version from the record."""
    runs = [run for run in record["history"] if version in run.get("versions", [])]
    if not runs:
        return True
    try:
        then = datetime.fromisoformat(str(runs[0].get("deleted_at")).replace("Z", "+00:00"))
        return (datetime.now(UTC) - then).total_seconds() > CLAIM_S
    except (ValueError, TypeError):  # unreadable, or without a zone: read again next time
        return False
