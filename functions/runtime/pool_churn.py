"""Which evictions of the model pool cost something (functions/runtime/pool.py).

An eviction alone is routine on a long-lived server: each version published and promoted leaves
the one before loaded (nothing drops it but room), so past `AIAAS_MAX_VERSIONS` every new
version evicts a superseded one that nobody calls any more. A WARNING each (the old line) was
noise that grew with every release. What an operator must hear is churn: a version evicted,
then asked for and loaded again soon after (seconds of load on a request for a large model, the
pool too small for what is in use). Each such load is counted (`aiaas_model_loads_total`'s
outcome `reloaded`) and said as a WARNING at most once a minute, with the counts since.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

Key = tuple[str, str]  # (name, version)

CHURN_WINDOW_S = 300.0  # a version loaded again this soon after its eviction: churn
SAID_EVERY_S = 60.0  # at most one WARNING line this often (a process)
KEPT = 1024  # evictions remembered at most (the oldest forgotten first)


class EvictionChurn:
    """Recent evictions, by version, to tell a load that is a reload (churn) from a first one."""

    def __init__(
        self,
        log: logging.Logger,
        max_versions: int,
        window_s: float = CHURN_WINDOW_S,
        every_s: float = SAID_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.max_versions = log, max_versions
        self.window_s, self.every_s, self._clock = window_s, every_s, clock
        self.reloads = 0  # in all, for the process's life
        self._evicted: OrderedDict[Key, tuple[float, str]] = OrderedDict()  # when, why
        self._said_at = -math.inf
        self._unsaid = 0  # reloads since the last line
        self._lock = threading.Lock()

    def evicted(self, key: Key, why: str) -> None:
        now = self._clock()
        with self._lock:
            self._evicted[key] = (now, why)
            self._evicted.move_to_end(key)
            while self._evicted:  # oldest first: those past the window, or past KEPT
                oldest, (at, _) = next(iter(self._evicted.items()))
                if now - at <= self.window_s and len(self._evicted) <= KEPT:
                    break
                del self._evicted[oldest]

    def reloaded(self, key: Key) -> bool:
        """Whether `key`, just loaded, was evicted within the window (then counted, and said
        unless a line was said within `every_s`)."""
        now = self._clock()
        with self._lock:
            found = self._evicted.pop(key, None)
            if found is None or now - found[0] > self.window_s:
                return False
            self.reloads += 1
            self._unsaid += 1
            if now - self._said_at < self.every_s:
                return True
            self._said_at, count = now, self._unsaid
            self._unsaid = 0
        at, why = found
        self.log.warning(
            "%s:%s loaded again %.0f s after its eviction (%s): the pool evicts versions still "
            "in use; %d such reload(s) since the last line, %d in all "
            '(aiaas_model_loads_total{outcome="reloaded"}); raise AIAAS_MAX_VERSIONS (now %d) '
            "or the function's memory (said at most once a minute)",
            *key,
            now - at,
            why,
            count,
            self.reloads,
            self.max_versions,
            extra={"reloads": self.reloads},
        )
        return True
