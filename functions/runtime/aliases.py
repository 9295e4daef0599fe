"""Alias records: `models/<name>/aliases/<alias>.json` holds the version an alias points at, who
moved it there and when, and the moves before (newest first, up to ALIAS_HISTORY): a rollback
walks that history back."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from functions.runtime import names
from functions.runtime.errors import BadRequest, Conflict, CorruptRecord
from functions.runtime.manifest import utc_now

ALIAS_HISTORY = 50

log = logging.getLogger("aiaas.registry")


def parse_alias_record(name: str, alias: str, raw: bytes) -> dict[str, Any]:
    """The stored record, its version checked; CorruptRecord (a 503) when it cannot be read."""
    try:
        record = json.loads(raw)
        version = names.version_name(record["version"])
    except (ValueError, TypeError, KeyError, BadRequest) as exc:
        raise CorruptRecord(
            f"alias {alias!r} of model {name!r} has a corrupt record: {exc}",
            public_message=f"alias {alias!r} of model {name!r} has a corrupt record in the registry",
        ) from exc
    return {**record, "version": version}


def rollback_target(name: str, alias: str, record: Mapping[str, Any], to: str | None) -> str:
    """The version a rollback of `alias` (its current `record`) goes to: the latest other
    version in its history, or `to` when that is one of them."""
    current = str(record["version"])
    earlier = [str(h.get("version")) for h in record.get("history", []) if isinstance(h, dict)]
    earlier = [v for v in dict.fromkeys(earlier) if v != current]
    if not earlier:
        raise Conflict(
            f"alias {alias!r} of model {name!r} has pointed only at version {current!r}; "
            "there is nothing to roll back to"
        )
    if to is None:
        return earlier[0]
    if to == current:
        raise Conflict(f"alias {alias!r} of model {name!r} already points at version {to!r}")
    if to not in earlier:
        raise Conflict(
            f"alias {alias!r} of model {name!r} never pointed at version {to!r} (it pointed at "
            f"{', '.join(earlier)}); to move it to a new version, promote that version"
        )
    return to


def next_alias_record(
    name: str, alias: str, raw: bytes | None, version: str, actor: str
) -> dict[str, Any]:
    """The record that moves `alias` to `version`, its history carrying the one it replaces."""
    history: list[dict[str, Any]] = []
    if raw is not None:
        try:
            previous = parse_alias_record(name, alias, raw)
        except CorruptRecord as exc:
            log.warning("replacing it: %s", exc.message)
        else:
            history = list(previous.get("history", []))
            history.insert(0, {k: previous.get(k) for k in ("version", "updated_at", "updated_by")})
    return {
        "alias": alias,
        "version": version,
        "updated_at": utc_now(),
        "updated_by": actor,
        "history": history[:ALIAS_HISTORY],
    }
