"""A rollout record as a terminal shows it: `aiaas rollout status` and `aiaas versions`' short
view (its latest log entries), each log entry with its actor's reason (`--reason`)."""

from __future__ import annotations

from typing import Any

from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from infra.cli.printable import printable


def describe(record: RolloutRecord, not_watched: dict[str, Any] | None = None) -> list[str]:
    """The rollout, its latest check and its log, for a terminal; `not_watched` (attention's)
    a warning that its split is live with no one judging it."""
    share = "shadow" if record.step < 0 else f"{record.share():.0%}"
    lines = [
        f"{record.model}@{record.alias}: {record.baseline} -> {record.candidate}, "
        f"{record.state.value} (step {share}, rollout {record.id}, by {record.started_by})"
    ]
    if record.started_reason:
        lines.append(printable(f"  why: {record.started_reason}"))
    check: dict[str, Any] = record.last_check or {}
    if check:
        lines.append(f"  last check {check.get('time')}: {check.get('reason')}")
    if not_watched:
        lines.append(
            f"  NOT WATCHED: no check for {not_watched['quiet_s']} s (one is due every "
            f"{not_watched['check_every_s']:g} s): the process running it has stopped, and the "
            f"alias still serves {record.candidate} at {share}. Resume it: "
            f"{not_watched['resume']} [--metrics URL]; or send everything back: "
            f"{not_watched['abort']}"
        )
    return lines + [log_line(e) for e in record.log]


def log_line(entry: dict[str, Any]) -> str:
    """A log entry as a terminal shows it, with its actor's reason where its message lacks it."""
    said, why = f"{entry.get('time')}  {entry.get('event', ''):11} {entry.get('message')}", ""
    if entry.get("reason") and str(entry["reason"]) not in said:
        why = f" (why: {entry['reason']})"
    return printable(f"  {said}{why}")


def rollout_lines(registry: Registry, model: str, entries: int = 3) -> list[str]:
    """`aiaas versions`' short view: each alias's latest rollout and its last log entries."""
    lines = []
    for record in RolloutBook(registry.store).all(model):
        shown = describe(record)
        lines.append(f"rollout {shown[0]}")
        lines += shown[1:2] if record.started_reason else []  # its "why:" line
        lines += [log_line(e) for e in record.log[-entries:]]
    return lines
