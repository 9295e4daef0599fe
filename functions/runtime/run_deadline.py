"""A time limit on one onnxruntime run, for a server shared by models it does not trust.

A graph can loop as many times as a request says (a Loop's trip count, a Range's length): four
such requests held every request thread of `aiaas serve` for ~50 s, and another model's
one-row predict waited 51.6 s behind them. onnxruntime stops a run between nodes, Loop
iterations included, once its run options' `terminate` is set; the options are per run, so
each request thread runs with its own, and one watcher thread sets `terminate` on those whose
run is past the limit. `AIAAS_MAX_RUN_SECONDS`: off in Lambda (its timeout ends the
invocation), a predict function's `Timeout` in `aiaas serve` (infra/local/functions.py). Off, runs
use the shared options as before, at no cost; on, a run costs a thread-local lookup, three
attribute writes and a clock read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import onnxruntime as ort

from functions.runtime.errors import ModelUnavailable

Runner = Callable[[list[str], dict[str, Any], ort.RunOptions], Any]
MAX_PERIOD_S = 0.5


class RunTooLong(ModelUnavailable):
    """A run stopped at the limit: a 503 (the server's limit; a smaller request may fit)."""


class _Slot:
    """One request thread's run options and when its current run must end (0: none running)."""

    __slots__ = ("deadline", "options", "thread")

    def __init__(self) -> None:
        self.options = ort.RunOptions()
        self.options.log_severity_level = 4  # the failure is answered, not logged twice
        self.deadline = 0.0
        # Its thread: a slot outlives none (a batch job scores on a thread of its own).
        self.thread = threading.current_thread()


class _Watcher:
    """The thread that stops runs past their limit; started at the first watched run."""

    def __init__(self) -> None:
        self.slots: list[_Slot] = []
        self.local = threading.local()
        self.lock = threading.Lock()
        self.period_s = MAX_PERIOD_S
        self.thread: threading.Thread | None = None

    def watch_for(self, limit_s: float) -> None:
        """Wake often enough for `limit_s` (a quarter of it, at most MAX_PERIOD_S)."""
        self.period_s = min(self.period_s, limit_s / 4)

    def slot(self) -> _Slot:
        slot: _Slot | None = getattr(self.local, "slot", None)
        if slot is None:
            slot = self.local.slot = _Slot()
            with self.lock:
                self.slots.append(slot)
                if self.thread is None:
                    self.thread = threading.Thread(target=self._watch, name="aiaas-run-deadline")
                    self.thread.daemon = True
                    self.thread.start()
        return slot

    def _watch(self) -> None:
        while True:
            time.sleep(self.period_s)
            now = time.monotonic()
            with self.lock:
                self.slots = slots = [slot for slot in self.slots if slot.thread.is_alive()]
            for slot in slots:
                deadline = slot.deadline
                if deadline and now > deadline:
                    slot.options.terminate = True
                    if slot.deadline != deadline:  # that run ended meanwhile: not the next one's
                        slot.options.terminate = False


_WATCHER = _Watcher()


def watched(run: Runner, limit_s: float, ref: str) -> Runner:
    """`run`, stopped with RunTooLong once it has run `limit_s` seconds."""
    _WATCHER.watch_for(limit_s)

    def run_watched(names: list[str], feeds: dict[str, Any], _shared: ort.RunOptions) -> Any:
        slot = _WATCHER.slot()
        options = slot.options
        options.terminate = False
        slot.deadline = time.monotonic() + limit_s
        try:
            return run(names, feeds, options)
        except Exception as exc:
            if options.terminate:
                raise RunTooLong(
                    f"{ref}: a run stopped after {limit_s:g} s (AIAAS_MAX_RUN_SECONDS): {exc}",
                    public_message=f"model {ref} ran longer than the {limit_s:g} s a run may "
                    "take here (AIAAS_MAX_RUN_SECONDS); send fewer rows, or smaller values for "
                    "an input that sets how much the model computes",
                ) from exc
            raise
        finally:
            slot.deadline = 0.0

    return run_watched
