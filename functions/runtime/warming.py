"""Loading a canary off the request path: what a warm server does when an alias it re-reads
newly splits traffic to a version it has not loaded.

Before, the re-read loaded the canary on the request path: the request that found the move
(every request arriving meanwhile, on a directory store) waited for the new session, and those
routed to the canary were its first answers, so a rollout judged a healthy candidate on its
load (41-90 ms for iris-logistic on S3, which answers in ~0.3 ms warm) and rolled it back at a
tight `--max-p99-ms`. Now the re-read serves the split at once with the canary's share on the
main version (as when a canary fails to load: never a version the alias does not name) and
loads the canary on a thread; once it is in, the split is swapped in whole, unless the alias
moved meanwhile. So no caller waits for a canary, and a caller whose routing key maps to it
gets the main version until it is loaded, then the canary for good: as with raising a weight,
callers only ever move onto the canary, never back.

In Lambda the thread runs while the container does (it is frozen between invocations): the
load finishes during the next requests, which it shares the CPU with. A container started
while the alias is split loads both versions before its first request (its init), as before.
A version made the main one (a full promote, a rollout's last step) still loads on the request
path: the next request must not be answered by what the alias no longer serves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from functions.runtime.errors import AiaasError
from functions.runtime.registry import ModelRef
from functions.runtime.routed import Routed

if TYPE_CHECKING:  # served.py imports this module
    from functions.runtime.pool import ModelPool

log = logging.getLogger("aiaas.runtime")

# (what was served, what to serve instead) -> whether it was still served and is now replaced
Swap = Callable[[Routed, Routed], bool]


class CanaryWarmer:
    """Canary loads for one served reference, one at a time, on their own thread."""

    def __init__(self, pool: ModelPool, ref: ModelRef) -> None:
        self.pool, self.ref = pool, ref
        self._thread: threading.Thread | None = None
        self._next: tuple[Routed, Swap] | None = None  # the latest split asked for
        self._lock = threading.Lock()

    def start(self, routed: Routed, swap: Swap) -> None:
        """Load `routed.warming` and swap the split in whole. A load running meanwhile (for a
        split the alias has since left: its swap will not take) is finished first."""
        with self._lock:
            self._next = (routed, swap)
            if self._thread is not None and self._thread.is_alive():
                return  # it takes `_next` when done
            self._thread = threading.Thread(target=self._run, name=f"warm {self.ref}", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Whether no canary load is running (after waiting up to `timeout` for one)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._next is None:
                    self._thread = None
                    return
                (routed, swap), self._next = self._next, None
            self._warm(routed, swap)

    def _warm(self, routed: Routed, swap: Swap) -> None:
        manifest, main = routed.warming, routed.main.manifest
        assert manifest is not None
        start = time.perf_counter()
        try:
            # The main version stays: it serves the canary's share meanwhile.
            canary = self.pool.load(manifest, keep=(main.name, main.version))
        except Exception as exc:  # as a canary that fails on the request path: main serves on
            problem = exc.message if isinstance(exc, AiaasError) else repr(exc)
            said = self.pool.routing_said.of(str(self.ref))
            said.failed(f"{self.ref}: canary {manifest.version} not loaded: {problem}")
            # Tried again when the alias is next re-read (its record changes, or the TTL).
            swap(routed, replace(routed, warming=None, problem=problem))  # and its last_error
            return
        warmed = replace(routed, canary=canary, warming=None)
        if swap(routed, warmed):
            self.pool.serve(self.ref, warmed)
            self.pool.routing_said.of(str(self.ref)).worked(f"{self.ref}: its canary loads again")
            ms = (time.perf_counter() - start) * 1e3
            log.info(
                "%s now serves %s (canary loaded in %.0f ms, off the request path)",
                self.ref,
                warmed,
                ms,
            )
