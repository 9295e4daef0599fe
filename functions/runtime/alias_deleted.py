"""Deleted aliases: `models/<name>/deleted_aliases/<alias>.json` keeps the record an alias had
when it was deleted (where it pointed, its history) with who deleted it and when.

Deleting an alias used to erase its record and history: nothing said who did it, and rollback
answered 404, so the one move that can switch every caller of a model (its default alias gone,
a bare name serves the newest version) was the one move that could not be undone. Now the
deletion is the alias's newest history state (`deleted_at`, `deleted_by`): a rollback restores
where it pointed, and promoting it again carries the history on. Why it was deleted, when the
caller said (`reason`, move_reason.py), is kept as `deleted_reason` beside them: the state's own
`reason` says why the alias was moved there.

A delete is refused (Conflict) while a rollout drives the alias, and for the default alias
unless forced: what a bare model name serves would change for every caller at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from functions.runtime import names
from functions.runtime.alias_preconditions import Precondition, delete_alias_record
from functions.runtime.alias_record import parse_alias_record
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import BadRequest, Conflict, CorruptRecord, NotFound
from functions.runtime.manifest import utc_now
from functions.runtime.move_reason import checked_reason
from functions.runtime.prune_log import deleted_by
from functions.runtime.refs import DEFAULT_ALIAS, alias_key, manifest_key, model_prefix
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import ObjectStore

log = logging.getLogger("aiaas.registry")


def deleted_key(name: str, alias: str) -> str:
    return f"{model_prefix(name)}/deleted_aliases/{names.alias_name(alias)}.json"


def delete_alias(
    store: ObjectStore,
    name: str,
    alias: str,
    newest: Callable[[], str],
    *,
    actor: str | None = None,
    when: Precondition | None = None,
    force: bool = False,
    reason: str | None = None,
) -> None:
    """Delete `alias`'s record, whatever it holds (a corrupt one included), keeping it with who
    deleted it, when and why; with `when`, only while it is the record the caller read.
    `newest`: the version a bare name serves once the default alias is gone (named in its
    refusal)."""
    who, why = actor or RuntimeSettings.from_env().actor, checked_reason(reason)

    def keep(raw: bytes) -> None:
        refuse_delete(store, name, alias, newest(), force)
        record_deletion(store, name, alias, raw, who, why)

    def missing() -> NotFound:  # deleted before: said as its GET says it, who and when
        return NotFound(deleted_note(store, name, alias))

    delete_alias_record(store, name, alias, alias_key(name, alias), when, keep, missing)


def refuse_delete(store: ObjectStore, name: str, alias: str, newest: str, force: bool) -> None:
    """Conflict when deleting `alias` would pull the rug from under a rollout, or (unless
    `force`) switch every caller of the bare name `name` to its newest version."""
    # Imported here: rollouts' records are for the control plane, not a predict cold start.
    from functions.runtime.rollout.record import RolloutBook

    rollout = RolloutBook(store).get(name, alias)
    if rollout is not None and rollout.running:
        raise Conflict(
            f"a rollout of {name}@{alias} is running (version {rollout.candidate}, started by "
            f"{rollout.started_by}): abort it first (aiaas rollout abort {name} --alias {alias})"
        )
    if alias == DEFAULT_ALIAS and not force:
        raise Conflict(
            f"alias {alias!r} is what a bare {name!r} serves: deleting it sends those callers "
            f"to the newest version, {newest}; send ?force=true to delete it anyway"
        )


def record_deletion(
    store: ObjectStore, name: str, alias: str, raw: bytes, actor: str, reason: str | None = None
) -> None:
    """Keep the record being deleted, stamped with who deleted it, when and why. A corrupt record
    says nothing to restore: an older deletion's record is dropped, not restored in its place."""
    key = deleted_key(name, alias)
    try:
        record = parse_alias_record(name, alias, raw)
    except CorruptRecord as exc:
        log.warning("deleting it, nothing to restore: %s", exc.message)
        return store.delete(key)
    stamped = {**record, "deleted_at": utc_now(), "deleted_by": actor}
    if reason is not None:
        stamped["deleted_reason"] = reason
    store.put_bytes(key, json.dumps(stamped, indent=2).encode())


def deleted_raw(store: ObjectStore, name: str, alias: str) -> bytes | None:
    """The record `alias` had when it was last deleted (as stored), or None."""
    try:
        return store.get_bytes(deleted_key(name, alias))
    except NotFound:
        return None


def deleted_record(store: ObjectStore, name: str, alias: str) -> dict[str, Any] | None:
    raw = deleted_raw(store, name, alias)
    return None if raw is None else parse_alias_record(name, alias, raw)


def restored_target(store: ObjectStore, name: str, alias: str) -> AliasTarget:
    """Where a rollback of a deleted alias goes: where it pointed when deleted (NotFound when it
    never existed, or its record was lost). Conflict when a version it sent requests to was
    deleted since: a deleted alias keeps no version from a prune or DELETE (it would keep them
    for ever), and the move's own check said the version went while the alias "was being moved
    onto it" (control hunt 6c). Its shadow, if that is gone, is left off."""
    record = deleted_record(store, name, alias)
    if record is None:
        raise NotFound(f"alias {alias!r} of model {name!r} not found")
    target = AliasTarget.of(record)
    if gone := _gone_since(store, name, target):
        raise Conflict(
            f"alias {alias!r} of model {name!r} cannot be restored: it pointed at "
            f"{target.describe()} when {record.get('deleted_by', '?')} deleted it at "
            f"{record.get('deleted_at', '?')}, and {gone}; {_promote(name, alias)}"
        )
    if target.shadow is not None and not _published(store, name, target.shadow.version):
        log.warning(
            "%s@%s restored without its shadow %s: that version was deleted since%s",
            name, alias, target.shadow.version, deleted_by(store, name, target.shadow.version),
        )  # fmt: skip
        return replace(target, shadow=None)
    return target


def deleted_note(store: ObjectStore, name: str, alias: str) -> str:
    """The 404 of an alias that is not there (its GET, a second DELETE), saying who deleted it
    when it was, and whether a rollback can restore it."""
    record = deleted_record(store, name, alias)
    if record is None:
        return f"alias {alias!r} of model {name!r} not found"
    target = AliasTarget.of(record)
    gone = _gone_since(store, name, target)
    return (
        f"alias {alias!r} of model {name!r} was deleted by {record.get('deleted_by', '?')} at "
        f"{record.get('deleted_at', '?')} (it pointed at {target.describe()}); "
        + (f"{gone}: {_promote(name, alias)}" if gone else "roll it back to restore it")
    )


def _gone_since(store: ObjectStore, name: str, target: AliasTarget) -> str:
    """What a restore of `target` lacks ("version '4' was deleted since (by ... at ...)"), or ""."""
    gone = [v for v in (target.version, target.canary) if v and not _published(store, name, v)]
    return " and ".join(
        f"version {v!r} was deleted since{deleted_by(store, name, v)}" for v in gone
    )


def _promote(name: str, alias: str) -> str:
    return f"promote a published version to it (`aiaas promote {name} VERSION --alias {alias}`)"


def _published(store: ObjectStore, name: str, version: str) -> bool:
    return store.exists(manifest_key(name, version))


def deleted_aliases(store: ObjectStore, name: str) -> dict[str, dict[str, Any]]:
    """Alias -> its record when deleted, for each deleted alias of `name` not promoted since
    (an unreadable one left out: it says nothing to restore)."""
    found: dict[str, dict[str, Any]] = {}
    prefix = f"{model_prefix(name)}/deleted_aliases/"
    for key in store.list_keys(prefix.rstrip("/")):  # a key, not a folder: no slash
        alias = key[len(prefix) :].removesuffix(".json")
        if "/" in alias or store.exists(alias_key(name, alias)):
            continue
        try:
            found[alias] = parse_alias_record(name, alias, store.get_bytes(key))
        except (CorruptRecord, NotFound, BadRequest):  # BadRequest: not an alias's name
            continue
    return found
