"""The recent moves of a model's aliases, as `aiaas versions` prints them (newest first).

The history lives in each alias record (who moved it, when, why if they said, and where it
pointed before); the
control plane shows the whole of it at `GET /control/models/{name}/aliases/{alias}`. A deleted
alias is listed with who deleted it and where it pointed (a rollback restores it). Versions
deleted by `aiaas prune` are listed after it, from the prune record (`prune_log`).
"""

from __future__ import annotations

from typing import Any

from functions.runtime.alias_deleted import deleted_aliases
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError
from functions.runtime.prune_log import prune_record
from functions.runtime.registry import Registry
from infra.cli.printable import printable_lines

SHOWN = 5  # moves listed per alias, the current state included


def history_lines(registry: Registry, name: str, aliases: list[str]) -> list[str]:
    """A heading per alias, then its last moves: when, by whom, what it pointed at."""
    lines = []
    for alias in sorted(aliases):
        try:
            record = registry.alias_record(name, alias)
        except AiaasError as exc:  # a corrupt record is reported by alias_report already
            lines.append(f"@{alias}: {exc.message}")
            continue
        if record is None:
            continue
        moves = [record, *record.get("history", [])]
        lines.append(f"@{alias} history ({len(moves)} states, newest first):")
        lines.extend(_move(entry) for entry in moves[:SHOWN])
        if len(moves) > SHOWN:
            lines.append(f"  ... {len(moves) - SHOWN} earlier (aiaas versions {name} --json)")
    return printable_lines(lines)


def deleted_lines(registry: Registry, name: str) -> list[str]:
    """A line per deleted alias (not promoted since): who deleted it, when, where it pointed."""
    lines = [
        f"@{alias} deleted {record.get('deleted_at', '?'):22} by "
        f"{_who(record.get('deleted_by'))}{_why(record.get('deleted_reason'), ',')}, pointed at "
        f"{AliasTarget.of(record).describe()} (aiaas rollback {name} --alias {alias} restores it)"
        for alias, record in sorted(deleted_aliases(registry.store, name).items())
    ]
    return printable_lines(lines)


def history_doc(registry: Registry, name: str, aliases: list[str]) -> dict[str, list[Any]]:
    """Each alias's states, newest first (the current one, then its stored history)."""
    found: dict[str, list[Any]] = {}
    for alias in sorted(aliases):
        record = registry.alias_record(name, alias)
        if record is not None:
            current = {k: v for k, v in record.items() if k != "history"}
            # One shape a state: the current record named its alias and the older ones did not,
            # and a state without a split or shadow left those keys out (null elsewhere).
            found[alias] = [
                {**dict.fromkeys(STATE_KEYS), **state, "alias": alias}
                for state in (current, *record.get("history", []))
            ]
    return found


STATE_KEYS = ("alias", "version", "weights", "shadow", "updated_at", "updated_by", "reason")


def prune_lines(registry: Registry, name: str) -> list[str]:
    """The last prunes of `name`: when, by whom, which versions went."""
    runs = prune_record(registry.store, name)["history"]
    if not runs:
        return []
    lines = [f"pruned ({len(runs)} runs, newest first):"]
    for run in runs[:SHOWN]:
        gone = [str(v) for v in run.get("versions", [])]
        listed = ", ".join(gone[:8]) + (f" and {len(gone) - 8} more" if len(gone) > 8 else "")
        lines.append(
            f"  {run.get('deleted_at', '?'):22} {_who(run.get('deleted_by')):28} "
            f"deleted {listed or 'nothing'} ({run.get('bytes', 0) / 1e6:.1f} MB)"
        )
    return printable_lines(lines)


def _move(entry: dict[str, Any]) -> str:
    deleted = (
        f" (then deleted at {entry['deleted_at']} by {entry.get('deleted_by', '?')}"
        f"{_why(entry.get('deleted_reason'), ',')})"
        if "deleted_at" in entry
        else ""
    )
    return (
        f"  {entry.get('updated_at', '?'):22} {_who(entry.get('updated_by')):28} "
        f"{AliasTarget.of(entry).describe()}{_why(entry.get('reason'))}{deleted}"
    )


def _why(reason: object, joined: str = ";") -> str:
    """`; why: REASON` after a move (a deletion's: `, why: ...`), or "" where none was said
    (a record from before reasons were kept, or a move without one)."""
    return f"{joined} why: {reason}" if reason else ""


def _who(actor: object) -> str:
    """An actor in its 28 columns, a longer one cut with an ellipsis: cut bare, the control
    plane's 'bearer-token-holder@127.0.0.1' read as another address, '...@127.0.0.'."""
    text = "?" if actor is None else str(actor)
    return text if len(text) <= 28 else text[:27] + "…"
