"""`aiaas monitor`'s window: `--window` and `--until` as the span of time the report reads.

A date means its whole UTC day, in either ISO spelling (2026-12-04 or 20261204: before, the
basic one meant the day's start, 24 h earlier than the same day dashed). Today's date, or a
time later today (another machine's clock a little ahead), means today so far: the window's
end is clamped to now, where it was refused as "in the future" (a daily cron's obvious
`--until $(date -u +%F)`); so is a time up to SKEW_S ahead just after midnight (the same clock
a little ahead, a day later). Only an end after that is refused, and a window reaching back
before 1970 is one clear line, not a traceback from the date arithmetic.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from functions.runtime.errors import BadRequest

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DAY = 86400
SKEW_S = 300  # a time this far ahead of now is a clock ahead, even one already in tomorrow


@dataclass(frozen=True)
class Period:
    """The span read: [since, until], and how the report names it."""

    since: float
    until: float
    said: str  # 'the last 1h', 'the 1d to 2026-11-20T00:00:00Z', '..., so far (to now, TIME)'


# A calendar date, alone or before a time: ISO's week (2026-W49) and ordinal (2026-339) dates,
# which `fromisoformat` also reads, name a week or a day nobody writes for a window's end.
_CALENDAR_DATE = re.compile(r"\d{4}-?\d{2}-?\d{2}(?:[T ]|$)")


class Moment(float):
    """`--until`'s time in epoch seconds, and the text it was given as: a refusal of
    `--until 2026-12-07` said "--until 2026-12-08T00:00:00Z is after today", a date not typed."""

    typed: str

    def __new__(cls, seconds: float, typed: str) -> Moment:
        moment = super().__new__(cls, seconds)
        moment.typed = typed
        return moment


def moment(text: str) -> Moment:
    """An argparse type: `--until`'s time in epoch seconds; a date is its day's end (UTC)."""
    text = text.strip()
    refused = argparse.ArgumentTypeError(
        f"{text!r} is no time: give a UTC date (2026-11-20) or time (2026-11-20T14:00)"
    )
    if not _CALENDAR_DATE.match(text):  # 2026-W49 read as its Monday, 2026-339 as a day
        raise refused
    try:
        day = date.fromisoformat(text)  # 2026-12-04 and 20261204 alike
    except ValueError:
        day = None
    try:
        if day is not None:
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return Moment(start.timestamp() + DAY, text)
        at = datetime.fromisoformat(text)
        return Moment((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp(), text)
    except (ValueError, OverflowError):
        raise refused from None


def parse_window(text: str) -> float:
    """'90s', '30m', '1h', '7d' as seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if not match or float(match[1]) <= 0:
        raise BadRequest(
            f"--window must be a number and a unit (s, m, h, d), like 1h; got {text!r}"
        )
    return float(match[1]) * UNITS[match[2]]


def period(window: str, until: float | None, now: float) -> Period:
    """The span `--window` and `--until` name, as of `now`: an end later today (or up to SKEW_S
    ahead) is now, the window still starting `--window` before the end named (today so far);
    one after that a BadRequest, and so is a start before 1970 (no model served then; earlier,
    the date arithmetic's traceback). The heading names both ends: `the 1d to <now>` read as
    the 24 h before now where it was today since midnight."""
    if until is None:
        end, said = now, f"the last {window}"
    elif until <= now:
        end, said = until, f"the {window} to {iso(until)}"
    elif until <= max((now // DAY + 1) * DAY, now + SKEW_S):  # today's end at most: so far
        end, said = now, f"the {window} to {iso(until)}, so far (to now, {iso(now)})"
    else:
        typed = until.typed if isinstance(until, Moment) else iso(until)
        raise BadRequest(
            f"--until {typed} is after today: give a day or time up to now "
            "(today's date reads today so far), or leave it out for now"
        )
    since = (end if until is None else until) - parse_window(window)
    if since > end:  # `--until TODAY --window 6h` at 14:00: 18:00 to now was backwards, empty
        since = end - parse_window(window)
    if since < 0:
        raise BadRequest(
            f"--window {window} to {iso(end)} would start before 1970, when "
            "no model served: give a shorter --window or a later --until"
        )
    return Period(since, end, said)


def iso(seconds: float) -> str:
    """UTC seconds as 2026-11-20T14:00:00Z (a time past year 9999, as `--until 9999-12-31`'s
    day end, as the year 10000)."""
    try:
        at = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return "the year 10000" if seconds > 0 else "before the year 1"
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")
