"""An alias write: a compare-and-swap on the alias record (`Registry._move_alias`).

The write side of the registry's aliases, apart from what serving reads: a predict function
resolves its alias on every cold start but never moves one, so the modules a move needs (a
deleted alias's record, the prune log, the preconditions' bytes) are not imported for it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from functions.runtime import alias_deleted
from functions.runtime.alias_preconditions import Precondition, record_bytes
from functions.runtime.alias_pruned import takes_requests, undo_if_pruned
from functions.runtime.alias_record import (
    kept_shadow,
    next_alias_record,
    parse_alias_record,
    unchanged_record,
)
from functions.runtime.aliases import AliasTarget, Written, wrote
from functions.runtime.errors import Conflict, CorruptRecord, NotFound
from functions.runtime.manifest_pins import PINS, pinned_for, pins_cover
from functions.runtime.move_reason import checked_reason
from functions.runtime.refs import alias_key
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import ObjectChanged, holds

if TYPE_CHECKING:
    from functions.runtime.registry import Registry

ALIAS_WRITE_TRIES = 20  # compare-and-swap attempts before a racing alias is a 409
ALIAS_BACKOFF_S = 0.005  # the first retry waits up to this; each next one twice as long
ALIAS_BACKOFF_MAX_S = 0.25  # ... up to this: 20 tries take at most a few seconds


def move_alias(
    registry: Registry,
    name: str,
    alias: str,
    choose: Callable[[bytes | None], AliasTarget],
    actor: str | None,
    when: Precondition | None = None,
    *,
    keep_shadow: bool = True,
    written: Written | None = None,
    mark: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """A compare-and-swap on the alias record: `choose` picks the target from the record
    as read, again when another writer changed it before our write, so no move is lost from
    the history (unless `when`, the caller's precondition, fails: PreconditionFailed). A
    corrupt record is replaced (logged); a move to where the alias is already writes nothing.
    `reason`: why, kept in the state written (a BadRequest, before any read, when unfit)."""
    store = registry.store
    key = alias_key(name, alias)
    who = actor or RuntimeSettings.from_env().actor
    why = checked_reason(reason)
    for attempt in range(ALIAS_WRITE_TRIES):
        try:
            raw, etag = store.read_versioned(key)
        except NotFound:
            raw, etag = None, None
        if when is not None:
            when.check(name, alias, raw)
        target = choose(raw)
        target = kept_shadow(name, alias, raw, target) if keep_shadow else target
        same = unchanged_record(name, alias, raw, target)
        if same is not None and pins_cover(same, target):
            return same  # already so (`written` says False): no history entry
        target = takes_requests(registry, name, raw, target, back=mark is not None, alias=alias)
        before = raw if raw is not None else alias_deleted.deleted_raw(store, name, alias)
        record = {**next_alias_record(name, alias, before, target, who, why), **(mark or {})}
        record[PINS] = pinned_for(registry, name, alias, _parsed(name, alias, before), target)
        data = record_bytes(record)
        try:
            store.put_bytes(key, data, if_absent=etag is None, if_match=etag)
            undo_if_pruned(store, name, alias, key, raw, data)  # a prune raced it
            return wrote(record, written)
        except (ObjectChanged, NotFound):  # NotFound: deleted since we read it
            if holds(store, key, data):  # ours landed; the retry of it met it
                return wrote(record, written)
            pause = min(ALIAS_BACKOFF_S * 2**attempt, ALIAS_BACKOFF_MAX_S)
            time.sleep(random.uniform(0, pause))  # noqa: S311
    raise Conflict(
        f"alias {alias!r} of model {name!r} kept changing while it was being set "
        f"({ALIAS_WRITE_TRIES} tries); try again"
    )


def _parsed(name: str, alias: str, raw: bytes | None) -> dict[str, Any] | None:
    """The record a move replaces, as read; None where there is none or it is corrupt."""
    try:
        return None if raw is None else parse_alias_record(name, alias, raw)
    except CorruptRecord:
        return None
