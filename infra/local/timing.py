"""Which calls `aiaas serve`'s gateway app runs inline on its event loop, and which on a thread.

A cheap function's whole handler takes tens of microseconds, less than a hop to a thread, so it
runs inline; everything else runs on a thread (fair_pool.py). Judged per route (method and
path) on its recent calls, and per request on what the route's average cannot know:
- a route's first call goes to a thread: it may be a cold start (a model load, an import);
- a call whose cost may depend on the request's values goes to a thread, whatever its route's
  calls cost so far: the predict function tells before each call whether the version that will
  answer it (the route's pinned one, or the alias's now: a promotion counts from its first
  call) has a Loop or Scan, or an operator whose output's size a request's value sets
  (functions/runtime/input_cost.py, read as the version loads); its cheap calls said nothing of
  its heavy ones, the first of which held the loop. Only the routes that run the model: its
  readiness and metadata stay inline, answered at once behind its heavy calls;
- a route whose calls average over OFFLOAD_AFTER_S of CPU, or over OFFLOAD_MODEL_S in its model
  (onnxruntime, which releases the GIL), goes to a thread;
- a request whose body is over INLINE_MAX_BODY goes to a thread: a route's average is learned on
  its usual requests, and parsing a body of megabytes takes milliseconds to tens of them;
- a route one of whose inline calls held the loop for over OVERRUN_S, working (a model whose
  cost grows with a body under INLINE_MAX_BODY, as sizes computed from its inputs' shapes do,
  judged on its small calls; Python code with a big input), or for over OVERRUN_WALL_S whatever it did (waiting for I/O), goes to a
  thread for HOLD_S after its last call that long: that call held the event loop, every other
  client and the health probes with it, and a route that had one may have another. A rare
  heavy request can hold the loop once per route and HOLD_S, not on every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable

OFFLOAD_AFTER_S = 0.002
OFFLOAD_MODEL_S = (
    0.0001  # the demo's MLP and CNN spend ~0.01 ms in onnxruntime, its transformer ~0.19
)
INLINE_TIMED_EVERY = 16  # an inline route's calls per timed one
# Bodies over this go to a thread whatever their route's average: a 64 KiB predict body (~8,000
# numbers) parses in well under a millisecond, a cheap call still.
INLINE_MAX_BODY = 64 * 1024
# An inline call this long (wall), with the loop's thread working for half of it or more (not
# preempted: GatewayApp._overran), or any this long at all, held the loop: its route goes to a
# thread for HOLD_S after its last call that long.
OVERRUN_S = 0.05
OVERRUN_WALL_S = 1.0
HOLD_S = 300.0


class Timing:
    """Per-route moving average of handler time, to decide inline vs thread pool."""

    MAX_PATHS = 10_000  # routes' paths (each version's, each model's) kept at most

    def __init__(self) -> None:
        self.average: dict[str, float] = {}
        self.model: dict[str, float] = {}  # the function's own average time in its model
        self.held: dict[str, float] = {}  # route -> until when (monotonic) it runs on a thread
        # Path -> what tells, before a call, whether the model that will answer it may cost
        # more on some request values than on others (None: its route runs no model).
        self.probes: dict[str, Callable[[], bool] | None] = {}

    def slow(self, key: str) -> bool:
        return (
            self.average.get(key, 1.0) > OFFLOAD_AFTER_S
            or self.model.get(key, 0.0) > OFFLOAD_MODEL_S
            or (key in self.held and self._held(key))
            # Last: a False here means the call runs inline, at once (served.py's `_looked`).
            or ((probe := self.probes.get(key)) is not None and probe())
        )

    def record(
        self,
        key: str,
        seconds: float,
        model_seconds: float = 0.0,
        status: int = 200,
    ) -> None:
        """Fold in one call's time; a 404's path is not kept: a scan of unknown paths (or
        versions) filled the table and, at the cap, cleared the real routes' times with it."""
        if status == 404:
            return
        if len(self.average) >= self.MAX_PATHS and key not in self.average:
            self.average.clear()
            self.model.clear()
            self.held.clear()
            self.probes.clear()
        self.average[key] = 0.9 * self.average.get(key, seconds) + 0.1 * seconds
        self.model[key] = model_seconds
        if key in self.held and max(seconds, model_seconds) > OVERRUN_S:
            self.overran(key)  # held, and its heavy calls go on (on threads): held on

    def overran(self, key: str) -> None:
        """An inline call of `key` took over OVERRUN_S: its calls go to a thread for HOLD_S."""
        if len(self.held) >= self.MAX_PATHS and key not in self.held:
            self.held.clear()
        self.held[key] = time.monotonic() + HOLD_S

    def _held(self, key: str) -> bool:
        until = self.held.get(key)
        if until is None:  # dropped by another thread meanwhile
            return False
        if time.monotonic() < until:
            return True
        self.held.pop(key, None)
        return False
