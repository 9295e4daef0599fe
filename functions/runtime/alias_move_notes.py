"""What moving an alias's callers from some versions to others changes for them, said and
never refused: a version whose tokenizer reads token ids as other tokens (`token_ids.py`), or
one reading the same features in another order (a promote without a weight takes it; a canary
or rollout of it is refused, rev14 2), or the same model file with its classes named in another
order (likewise, hunt_journey24 3).

The CLI's alias moves (promote, with or without --weight, rollback, rollout) print these on
stderr (infra/cli/token_ids_change.py); the control plane's (an alias PUT, whole or weighted,
a rollback, a rollout start) answer them in `warnings`. A canary PUT and a rollout start said
nothing through the control plane while the CLI said it (leftovers2 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.registry import Registry
from functions.runtime.rollout.same_answers import relabel_warning, reorder_warning
from functions.runtime.token_ids import callers_moved_note


def callers_on(reg: Registry, name: str, alias: str, target: AliasTarget | None) -> list[str]:
    """The versions that answer `name@alias`'s callers: its version and canary; with no alias
    record, the default alias's callers are the bare name's, on the newest version (a first
    `promote` moves them off it), and a named alias has none."""
    if target is not None:
        return [v for v in (target.version, target.canary) if v is not None]
    if alias != DEFAULT_ALIAS:
        return []
    try:
        return [reg.listing(name).newest.version]
    except AiaasError:  # none readable: a note, never a reason to fail the move
        return []


def order_note(reg: Registry, name: str, old: str, new: str) -> str | None:
    """The warning when callers of version `old` are moved to `new`, which reads the same
    features in another order: a promote without --weight took it with no word, while a canary
    or rollout of it is refused (rev14 2)."""
    try:
        before, after = reg.manifest(name, old), reg.manifest(name, new)
        said = reorder_warning(name, before, after) or relabel_warning(name, before, after)
    except AiaasError:  # a note, never a reason to fail the move
        return None
    return None if said is None else f"warning: {said}"


def moves_said(reg: Registry, name: str, was: Iterable[str], now: Iterable[str]) -> list[str]:
    """The warnings (`warning: ...`) for callers of a version in `was` moved to one in `now`,
    once per pair: a split's weights changed are said once, not both ways; back to the version
    a rollback restores too, whose ids the clients that followed the first warning no longer
    send (rev12 2)."""
    said: set[frozenset[str]] = set()
    lines: list[str] = []
    for old in dict.fromkeys(was):
        for new in dict.fromkeys(now):
            pair = frozenset((old, new))
            if old == new or pair in said:
                continue
            said.add(pair)
            for note in (callers_moved_note(reg, name, old, new), order_note(reg, name, old, new)):
                if note is not None:
                    lines.append(note)
    return lines


def state_before(record: Mapping[str, Any]) -> AliasTarget | None:
    """Where an alias record just written pointed before that write (its newest history
    state), or None: no state before, or a deletion (its callers were the bare name's)."""
    history = record.get("history") or []
    last = history[0] if history and isinstance(history[0], Mapping) else None
    if last is None or "deleted_at" in last:
        return None
    try:
        return AliasTarget.of(last)
    except (AiaasError, KeyError, ValueError):
        return None
