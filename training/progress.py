"""How a training job shows its epochs: a live bar on a terminal, plain lines in a log.

On a terminal tqdm redraws one line. Anywhere else (the GPU container's log in CloudWatch, CI,
`aiaas train ... 2>&1 | tee log`) tqdm turned itself off, so a job said nothing from start to
end, however long it ran. There it writes one plain line per epoch, at most one every
`LOG_EVERY_S` seconds, plus the first and the last epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

LOG_EVERY_S = 30.0


class EpochProgress:
    """Shows epochs as they end; `show` None is automatic (bar on a terminal, else lines)."""

    def __init__(
        self,
        name: str,
        epochs: int,
        show: bool | None,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.epochs, self.clock = name, epochs, clock
        self.stream = stream or sys.stderr
        terminal = self.stream.isatty()
        self.bar = (
            tqdm(total=epochs, desc=name, unit="epoch", file=self.stream)
            if (show or (show is None and terminal))
            else None
        )
        self.lines = show is None and not terminal
        self.started = self.last_line = clock()
        self.pending = ""  # the latest epoch's line, not yet written

    def update(self, epoch: int, shown: dict[str, float]) -> None:
        """Epoch `epoch` ended with these figures (loss, validation metric...)."""
        figures = {k: f"{v:.4f}" for k, v in shown.items()}
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(figures)
        if not self.lines:
            return
        now = self.clock()
        self.pending = (
            f"{self.name}: epoch {epoch}/{self.epochs} "
            + " ".join(f"{k}={v}" for k, v in figures.items())
            + f" ({now - self.started:.1f} s)"
        )
        if epoch == 1 or now - self.last_line >= LOG_EVERY_S:
            self._write()

    def _write(self) -> None:
        print(self.pending, file=self.stream, flush=True)
        self.pending, self.last_line = "", self.clock()

    def __enter__(self) -> EpochProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.pending:  # the last epoch (or the one early stopping ended on)
            self._write()
