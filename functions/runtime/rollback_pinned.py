"""A rollback is a move relative to the alias as its caller found it: "back from what it
serves now". The alias's compare-and-swap (`Registry._move_alias`) asks its `choose` again on
the record read after a lost race, which is right for a promote (an absolute move) and wrong
for a rollback: two rollbacks at once (two people hitting the brake on one bad version, an
alarm's automation and its on-call) both read 3, one wrote 2, and the other, choosing again on
2, rolled that rollback back: the bad version 3 served again, both commands exit 0 (hunt_races 6).

Pinned, a rollback moves only from the record it first read. When the alias changed before
its write: if it now sends traffic where this rollback would have (another rollback did the
same), nothing is written (unchanged); anywhere else, a Conflict (409) saying where it is now,
and nothing moved.

Most such pairs do not even overlap: the second reads the alias after the first has written
(a command starts in a few hundred ms), finds it moved back, and "goes back" to the bad
version; so does a retried rollback whose first answer was lost (and after a canary's
rollback, the second went on further back, to an older release). So the record a rollback
writes says so (`"rolled_back": true`, gone with the next move), and a plain rollback (no
`to`) of one written less than `AGAIN_S` ago is refused (409), saying who rolled it back and
how to move it on purpose: name the version (`--to`, `?to=`) or promote it. Later, a rollback
undoes a rollback as before. A retry by the actor whose rollback wrote that record (its answer
lost: an automation's timed-out POST) is no second brake: it answers the record as it stands,
nothing written (`retried` says so), as the overlapped pair does (review_rev5 4).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from functions.runtime.alias_record import parse_alias_record
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import Conflict
from functions.runtime.settings import RuntimeSettings

AGAIN_S = 60.0  # a plain rollback of a rollback made this recently is refused
MARK = "rolled_back"  # in the record a rollback writes; the next move writes a record without
ROLLED_BACK: Mapping[str, Any] = {MARK: True}


def pinned(
    name: str,
    alias: str,
    choose: Callable[[bytes | None], AliasTarget],
    to: str | None,
    actor: str | None = None,
) -> Callable[[bytes | None], AliasTarget]:
    """`choose` (a rollback's, to `to` or None, by `actor`: None, the environment's), asked
    once: on the record first read."""
    first: list[tuple[bytes | None, AliasTarget]] = []
    who = actor or RuntimeSettings.from_env().actor

    def target(raw: bytes | None) -> AliasTarget:
        if not first:
            record = None if raw is None or to is not None else parse_alias_record(name, alias, raw)
            if record is not None and retried(record, who) is not None:  # its own, again:
                first.append((raw, AliasTarget.of(record)))  # where it is, nothing written
            else:
                if record is not None:
                    not_undoing(name, alias, record)
                first.append((raw, choose(raw)))
        seen, goal = first[0]
        if raw == seen:
            return goal
        if raw is None:  # deleted since it was read
            raise Conflict(
                f"alias {alias!r} of model {name!r} was deleted while it was being rolled back; "
                "nothing rolled back (roll back again to restore it)"
            )
        record = parse_alias_record(name, alias, raw)
        now = AliasTarget.of(record)
        if _same(now, goal):
            return now  # rolled back there by another move meanwhile: unchanged, not twice
        raise Conflict(
            f"alias {alias!r} of model {name!r} was moved while it was being rolled back (to "
            f"{now.describe()} by {record.get('updated_by', '?')} at "
            f"{record.get('updated_at', '?')}); nothing rolled back: look at it again (`aiaas "
            f"versions {name}`) and roll back from there"
        )

    return target


def not_undoing(name: str, alias: str, record: Mapping[str, Any]) -> None:
    """Conflict when a rollback wrote `record` less than AGAIN_S ago: a plain rollback now
    would undo it, or go on further back."""
    age = _recent(record)
    if age is None:
        return
    now, left = AliasTarget.of(record), AliasTarget.of(record["history"][0])
    raise Conflict(
        f"alias {alias!r} of model {name!r} was rolled back to {now.describe()} from "
        f"{left.describe()} by {record.get('updated_by', '?')} {age:.0f} s ago: a rollback now "
        "would undo that or go further back (two rollbacks at once, or one retried); to move "
        f"it on purpose, name the version (`aiaas rollback {name} --alias {alias} --to VERSION`"
        ", `?to=VERSION`) or promote it"
    )


def retried(record: Mapping[str, Any], actor: str) -> str | None:
    """When `actor`'s own rollback wrote `record` less than AGAIN_S ago (a retry of it: the
    alias is where that rollback put it, as the mark goes with any other move), what to say:
    `already rolled back to 2 from 3 by you 4 s ago`; else None."""
    age = _recent(record)
    if age is None or record.get("updated_by") != actor:
        return None
    now, left = AliasTarget.of(record), AliasTarget.of(record["history"][0])
    return f"already rolled back to {now.describe()} from {left.describe()} by you {age:.0f} s ago"


def just_rolled_back(record: Mapping[str, Any]) -> bool:
    """Whether a rollback wrote `record` less than AGAIN_S ago: a rollback that wrote nothing
    then met it (two at once), where otherwise the alias already was where it was sent."""
    return _recent(record) is not None


def _recent(record: Mapping[str, Any]) -> float | None:
    """Seconds since a rollback wrote `record` when less than AGAIN_S, else None."""
    age = _age_s(record.get("updated_at"))
    # A time ahead of this clock is another host's (skewed) clock: a few seconds read as now,
    # more than the window as no time at all, not a refusal for as long as the skew lasts.
    if not (record.get(MARK) is True and record.get("history") and age is not None):
        return None
    if not -AGAIN_S < age < AGAIN_S:
        return None
    return max(age, 0.0)


def _same(one: AliasTarget, other: AliasTarget) -> bool:
    return (one.version, one.weights()) == (other.version, other.weights())


def _age_s(stamp: object) -> float | None:
    """Seconds since `stamp` (`2026-12-06T14:20:04Z`), or None when it is no such time."""
    try:
        then = datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return None
    return time.time() - then
