"""The stored alias record (`models/<name>/aliases/<alias>.json`): read into the one shape every
reader takes, and the next one a move writes.

A record may be written by hand or by another tool: `{"version": "1"}` is served as it says.
Its version, split and shadow decide what is served, so a record whose own ones cannot be read
is corrupt (CorruptRecord: a 503 naming it; a promote replaces it). The rest is its account of
itself, read leniently, each repair logged: a time or actor that is not text is left out (read
as null), and a history entry that does not read as a state (not an object, no valid version,
a split or shadow that cannot be read) is dropped; a reason that is not text is left out too. Read as written, such a record passed here
but broke its readers: the control plane answered its GET, and a PUT or rollback that had
moved the alias, with a plain-text 500; `"history": "x"` was copied into the next record as an
entry "x", and `aiaas versions --json` crashed on it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from functions.runtime import names
from functions.runtime.aliases import ALIAS_HISTORY, AliasTarget
from functions.runtime.errors import BadRequest, CorruptRecord
from functions.runtime.manifest import utc_now
from functions.runtime.manifest_pins import PINS

# `reason`: why it was moved there (move_reason.py), absent from records before it or without.
# PINS: the digests of the manifests the state sent requests to (manifest_pins.py), so that
# a move back to one of its versions (a rollback) is refused where its manifest changed since
HISTORY_KEYS = ("version", "weights", "shadow", "updated_at", "updated_by", "reason", PINS)
# A state a deletion ended (alias_deleted.py): who deleted it, when, and why if said.
DELETION_KEYS = ("deleted_at", "deleted_by", "deleted_reason")
TEXT_KEYS = ("updated_at", "updated_by", "reason", *DELETION_KEYS)
UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, BadRequest)

WARNED_RECORDS = 1024  # records whose repairs were logged, remembered per process
SHOWN_REPAIRS = 5  # repairs a log line names

log = logging.getLogger("aiaas.registry")
_WARNED: set[int] = set()


def parse_alias_record(name: str, alias: str, raw: bytes) -> dict[str, Any]:
    """The stored record in the shape every reader takes (see the module docstring);
    CorruptRecord (a 503) when what it serves cannot be read."""
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise TypeError(f"a record is an object, not {type(record).__name__}")
        target = state_of(record)
    except UNREADABLE as exc:
        raise CorruptRecord(
            f"alias {alias!r} of model {name!r} has a corrupt record: {_why(exc)}",
            public_message=(
                f"alias {alias!r} of model {name!r} has a corrupt record in the registry; a "
                f"promote replaces it (`aiaas promote {name} VERSION --alias {alias}`, or PUT "
                f"/control/models/{name}/aliases/{alias})"
            ),
        ) from exc
    repairs: list[str] = []
    normal = _normal_state(record, target, "", repairs)
    normal["history"] = _normal_history(record.get("history"), repairs)
    if repairs:
        _warn_once(name, alias, raw, repairs)
    return normal


def _warn_once(name: str, alias: str, raw: bytes, repairs: list[str]) -> None:
    """One log line per stored record read leniently: a move reads it 4-5 times, and it stays
    as stored (and read again on every GET) until a move rewrites it whole."""
    seen = hash((name, raw))
    if seen in _WARNED:
        return
    if len(_WARNED) >= WARNED_RECORDS:
        _WARNED.clear()
    _WARNED.add(seen)
    log.warning(
        "alias %r of model %r: its record read leniently (a move rewrites it whole): %s",
        alias,
        name,
        "; ".join(repairs[:SHOWN_REPAIRS])
        + (f"; and {len(repairs) - SHOWN_REPAIRS} more" if len(repairs) > SHOWN_REPAIRS else ""),
    )


def state_of(entry: Mapping[str, Any]) -> AliasTarget:
    """Where a record (or a history entry) sends traffic; an UNREADABLE error when it cannot
    say (its version was not checked when it had no split)."""
    names.version_name(entry["version"])
    return AliasTarget.of(entry)


def _normal_state(
    entry: Mapping[str, Any], target: AliasTarget, where: str, repairs: list[str]
) -> dict[str, Any]:
    """`entry` with its version, split and shadow as `target` (what is served) writes them, and
    without a time or actor that is not text; other keys kept (a later release's, say)."""
    state = dict(entry)
    if target.version != entry["version"]:  # {"version": "3", "weights": {"1": .5, "2": .5}}
        repairs.append(f"{where}version {names.shown(entry['version'])} is not in its split")
    state["version"] = target.version
    shadow = None if target.shadow is None else target.shadow.record()
    for key, value in (("weights", target.weights()), ("shadow", shadow)):
        if value is None:
            state.pop(key, None)  # `"weights": {"1": 1}` is no split
        else:
            state[key] = value
    for key in TEXT_KEYS:
        if key in state and not isinstance(state[key], str):
            repairs.append(f"{where}{key} {names.shown(state.pop(key))} is not text: left out")
    return state


def _normal_history(history: object, repairs: list[str]) -> list[dict[str, Any]]:
    """The entries of `history` that read as states, each normalised; the others dropped."""
    if history is None:
        return []
    if not isinstance(history, list):
        repairs.append(f"history {names.shown(history)} is not a list: left out")
        return []
    kept = []
    for place, entry in enumerate(history, 1):
        if _plain(entry):  # most are: kept as they are, no target built (~5x faster)
            kept.append(entry)
            continue
        try:
            if not isinstance(entry, dict):
                raise TypeError(f"{names.shown(entry)} is not an object")
            target = state_of(entry)
        except UNREADABLE as exc:
            repairs.append(f"history entry {place} dropped: {_why(exc)}")
            continue
        kept.append(_normal_state(entry, target, f"history entry {place}: ", repairs))
    return kept


def _plain(entry: object) -> bool:
    """Whether `entry` is a state as a move writes one without a split or shadow: a valid
    version, and a time and actor that are text."""
    if not isinstance(entry, dict) or "weights" in entry or "shadow" in entry:
        return False
    for key in TEXT_KEYS:
        if key in entry and not isinstance(entry[key], str):
            return False
    try:
        names.version_name(entry["version"])
    except (KeyError, BadRequest):
        return False
    return True


def _why(exc: Exception) -> str:
    return f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)


def kept_shadow(name: str, alias: str, raw: bytes | None, target: AliasTarget) -> AliasTarget:
    """`target`, keeping the shadow the record had (a promote or rollback moves traffic,
    not the shadow), unless it now serves the shadow version (then the shadow ends)."""
    if raw is None or target.shadow is not None:
        return target
    try:
        before = AliasTarget.of(parse_alias_record(name, alias, raw)).shadow
    except (CorruptRecord, BadRequest):
        return target
    if before is None or target.serves(before.version):
        return target
    return replace(target, shadow=before)


def unchanged_record(
    name: str, alias: str, raw: bytes | None, target: AliasTarget
) -> dict[str, Any] | None:
    """The stored record when it already sends traffic as `target` would (same version, split
    and shadow): moving there again is a no-op, not a second history entry. Else None."""
    if raw is None:
        return None
    try:
        record = parse_alias_record(name, alias, raw)
    except CorruptRecord:
        return None
    return record if AliasTarget.of(record) == target else None


def next_alias_record(
    name: str,
    alias: str,
    raw: bytes | None,
    target: AliasTarget,
    actor: str,
    reason: str | None = None,
) -> dict[str, Any]:
    """The record that moves `alias` to `target` (by `actor`, for `reason` if given), its
    history carrying the one it replaces (read as `parse_alias_record` reads it: a bad entry
    is not carried on)."""
    history: list[dict[str, Any]] = []
    if raw is not None:
        try:
            previous = parse_alias_record(name, alias, raw)
        except CorruptRecord as exc:
            log.warning("replacing it: %s", exc.message)
        else:
            history = list(previous["history"])
            keys = HISTORY_KEYS + DELETION_KEYS
            history.insert(0, {k: previous[k] for k in keys if k in previous})
    record: dict[str, Any] = {"alias": alias, "version": target.version}
    weights = target.weights()
    if weights is not None:
        record["weights"] = weights
    if target.shadow is not None:
        record["shadow"] = target.shadow.record()
    record["updated_at"], record["updated_by"] = utc_now(), actor
    if reason is not None:  # no key at all without one: a record as older releases wrote it
        record["reason"] = reason
    return {**record, "history": history[:ALIAS_HISTORY]}
