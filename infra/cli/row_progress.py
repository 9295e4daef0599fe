"""How a long CLI job shows it is alive: as `training.progress` shows epochs (a line redrawn on a
terminal, a plain line every `LOG_EVERY_S` in a log), without tqdm, which a base install
(`aiaas compare` needs no training extra) does not have. Rows (compare, batch, explain) or
bytes (publish, pull), with the rate, and the percent and time left where the total is known.

Nothing is shown for a job done within `SHOW_AFTER_S`: a quick one prints its report alone.
The lines go to stderr, so stdout (a report, `--json`) stays what scripts read.

`Waiting` is the same line for a wait on work done elsewhere (`aiaas batch --deployed
--wait`): the state it reports and the time waited, not a count.

The count is what the work told: `progress(done)` with a total so far, or `progress.add(n)`
from any thread (parallel parts, the threads of sharded workers' answers) with what one chunk
or part just finished; callers count per chunk or part, never per row or byte.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TextIO

from infra.cli.stop_signals import raise_swallowed

SHOW_AFTER_S = 2.0
REDRAW_EVERY_S = 0.2
LOG_EVERY_S = 30.0


@dataclass(frozen=True)
class Unit:
    count: Callable[[float], str]  # an amount without the unit's name ("1,234", "1.2 GB")
    name: str  # after the amount ("rows"), or "" when `count` says it
    rate: Callable[[float], str]


def _size(n: float) -> str:
    if n >= 1e9:
        return f"{n / 1e9:,.2f} GB"
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.0f} kB"


ROWS = Unit(lambda n: f"{n:,.0f}", " rows", lambda r: f"{r:,.0f} rows/s")
BYTES = Unit(_size, "", lambda r: f"{_size(r)}/s")


def duration(seconds: float) -> str:
    """`45 s`, `3 min 05 s`, `2 h 10 min`."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def draw(stream: TextIO, terminal: bool, line: str, width: int) -> int:
    """`line` on `stream`: on a terminal over the last one (`width` long), a shorter one
    blanking what it leaves, else a line of its own; the width drawn so far."""
    if terminal:
        print("\r" + line.ljust(width), end="", file=stream, flush=True)
        return max(width, len(line))
    print(line, file=stream, flush=True)
    return width


class Line:
    """What `Progress` and `Waiting` share: a line on `stream`, redrawn on a terminal, that
    leaving the `with` block ends (`end`: the last state drawn, then off the redrawn line)."""

    stream: TextIO
    terminal: bool

    def end(self) -> None:
        raise NotImplementedError

    def off_the_line(self) -> None:
        """On a terminal, a line break after the redrawn line; in a log each line has one."""
        if self.terminal:
            print(file=self.stream, flush=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.end()


class Progress(Line):
    """Progress of `what`: `total` is the count when known (percent and time left are shown),
    an upper bound when `bound` (`at most N`), else None; `verb` says what was done. With `of`,
    the size of what the work reads (a file's bytes, where its rows are not known before), the
    work also tells what it has read: the percent and time left are of that."""

    def __init__(
        self,
        what: str,
        total: int | None = None,
        *,
        verb: str = "done",
        unit: Unit = ROWS,
        bound: bool = False,
        of: int | None = None,
        show: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.verb, self.unit, self.bound = what, total, verb, unit, bound
        self.show, self.clock, self.of = show, clock, of
        self.read = 0  # of `of`
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.started = clock()
        self.last = -1.0  # when a line was last shown; < 0: never
        self.done = 0
        self.shown = 0  # the count the last line showed
        self.updated = self.started  # when `done` was last told
        self.lock = threading.Lock()
        self.width = 0  # the longest line drawn on the terminal

    def __call__(self, done: int, read: int = 0) -> None:
        """The count so far, and what it read (a caller that keeps the total)."""
        raise_swallowed()
        with self.lock:
            self.read = read
            self._told(done)

    def add(self, more: int, read: int = 0) -> None:
        """`more` finished, having read `read` more (from any thread)."""
        raise_swallowed()  # a stop signal whose exception a finalizer swallowed
        with self.lock:
            self.read += read
            self._told(self.done + more)

    def _told(self, done: int) -> None:
        self.done = done
        now = self.updated = self.clock()
        if not self.show or now - self.started < SHOW_AFTER_S:
            return
        every = REDRAW_EVERY_S if self.terminal else LOG_EVERY_S
        if self.last < 0 or now - self.last >= every:
            self._write(now)

    def line(self, now: float) -> str:
        spent = now - self.started
        rate = self.done / spent if spent > 0 else 0.0
        unit, total = self.unit, self.total
        if total is None:
            amount = f"{unit.count(self.done)}{unit.name} {self.verb}"
        elif self.bound:
            amount = f"{unit.count(self.done)}{unit.name} {self.verb} (at most {unit.count(total)})"
        else:
            share = f"{self.done * 100 // total}%" if total else "100%"  # 99.6%: not 100% yet
            amount = (
                f"{unit.count(self.done)} of {unit.count(total)}{unit.name} {self.verb} ({share})"
            )
        read = min(self.read, self.of or 0)  # a last line without its break counts one more
        if self.of:
            amount += f" ({read * 100 // self.of}% of the file)"
        line = f"{self.what}: {amount}, {unit.rate(rate)}, {spent:.1f} s"
        if total is not None and not self.bound and 0 < self.done < total and rate > 0:
            line += f", {duration((total - self.done) / rate)} left"
        elif self.of and 0 < read < self.of:
            line += f", {duration(spent * (self.of - read) / read)} left"
        return line

    def _write(self, now: float) -> None:
        self.width = draw(self.stream, self.terminal, self.line(now), self.width)
        self.last, self.shown = now, self.done

    def end(self) -> None:
        with self.lock:
            if self.last < 0:
                return
            if self.shown != self.done:  # the final count, as of the last chunk (not the report)
                self._write(self.updated)
            self.off_the_line()


class Waiting(Line):
    """What a wait on work done elsewhere knows (the state it reports, parts done), as
    `what: state, time waited`: redrawn on a terminal each time it is told, a line in a log each
    time the state changes. Nothing within `SHOW_AFTER_S`, as for `Progress`."""

    def __init__(
        self,
        what: str,
        *,
        show: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.show, self.clock = what, show, clock
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.started = clock()
        self.shown: str | None = None  # the state the last line showed
        self.width = 0

    def __call__(self, state: str) -> None:
        spent = self.clock() - self.started
        if not self.show or spent < SHOW_AFTER_S or (state == self.shown and not self.terminal):
            return
        line = f"{self.what}: {state}, {duration(spent)} waited"
        self.width = draw(self.stream, self.terminal, line, self.width)
        self.shown = state

    def end(self) -> None:
        if self.shown is not None:
            self.off_the_line()


def add_flag(parser: argparse.ArgumentParser, job: str) -> None:
    """`--no-progress`, the same on every command that shows progress."""
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help=f"no progress line on stderr (shown for {job} that takes over {SHOW_AFTER_S:.0f} s)",
    )
