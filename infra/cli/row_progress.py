"""How a long CLI job over rows shows it is alive: as `training.progress` shows epochs (a line
redrawn on a terminal, a plain line every `LOG_EVERY_S` in a log), without tqdm, which a base
install (`aiaas compare` needs no training extra) does not have.

Nothing is shown for a job done within `SHOW_AFTER_S`: a quick comparison prints its report
alone, as before.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

SHOW_AFTER_S = 2.0
REDRAW_EVERY_S = 0.2
LOG_EVERY_S = 30.0


class RowProgress:
    """Called with the rows done so far; `total` is the most there can be (a bound, not a count)."""

    def __init__(
        self,
        what: str,
        total: int,
        *,
        show: bool = True,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.total, self.show, self.clock = what, total, show, clock
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.started = clock()
        self.last = -1.0  # when a line was last shown; < 0: never
        self.rows = 0
        self.shown = 0  # the rows the last line showed
        self.updated = self.started  # when `rows` were last told

    def __call__(self, rows: int) -> None:
        self.rows = rows
        now = self.updated = self.clock()
        if not self.show or now - self.started < SHOW_AFTER_S:
            return
        every = REDRAW_EVERY_S if self.terminal else LOG_EVERY_S
        if self.last < 0 or now - self.last >= every:
            self._write(now)

    def _write(self, now: float) -> None:
        spent = now - self.started
        rate = self.rows / spent if spent > 0 else 0.0
        line = (
            f"{self.what}: {self.rows:,} rows compared (at most {self.total:,}), "
            f"{rate:,.0f} rows/s, {spent:.1f} s"
        )
        end = "" if self.terminal else "\n"
        print(("\r" + line) if self.terminal else line, end=end, file=self.stream, flush=True)
        self.last, self.shown = now, self.rows

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.last < 0:
            return
        if self.shown != self.rows:  # the final count, as of the last batch (not the report)
            self._write(self.updated)
        if self.terminal:  # off the redrawn line
            print(file=self.stream, flush=True)
