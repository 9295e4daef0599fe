"""What a command that moves an alias by hand says of the move: what the alias serves now, what
it served before, and the rollout the move supersedes. `aiaas promote` and `aiaas rollback` said
so; `aiaas pull`, which moves the alias the version came through, said only `churn@production ->
cand-7`, over a split and a running rollout alike (hunt_journey3 3)."""

from __future__ import annotations

import sys
from typing import Any

from functions.runtime.aliases import AliasTarget, Written
from functions.runtime.registry import Registry
from functions.runtime.rollout.record import RolloutBook


def say_moved(
    reg: Registry,
    name: str,
    alias: str,
    record: dict[str, Any],
    written: Written,
    replaces_corrupt: bool = False,
) -> None:
    """`NAME@ALIAS -> NOW (was BEFORE)` on stdout, or that it already was; the rollout note."""
    now = AliasTarget.of(record).describe()
    if not written.written:  # already so, maybe by another command just now: no history entry
        print(f"{name}@{alias} -> {now} (unchanged: it already was; nothing recorded)")
        return
    # What it replaced: the history's newest entry, not a read before the move (another
    # command may have moved the alias since).
    history = record.get("history") or []
    before = AliasTarget.of(history[0]).describe() if history else None
    if before is None and replaces_corrupt:
        before = "a corrupt record, now replaced"
    print(f"{name}@{alias} -> {now}" + (f" (was {before})" if before else ""))
    say_rollout_superseded(reg, name, alias)


def say_rollout_superseded(reg: Registry, name: str, alias: str) -> None:
    """A move by hand under a running rollout wins: say so, and what becomes of the rollout."""
    rollout = RolloutBook(reg.store).get(name, alias)
    if rollout is not None and rollout.running:
        print(
            f"note: the rollout of {name}@{alias} ({rollout.baseline} -> {rollout.candidate}, "
            f"by {rollout.started_by}) was running: its driver's next check ends it as "
            "superseded and leaves the alias as set here (`aiaas rollout status` shows it)",
            file=sys.stderr,
        )
