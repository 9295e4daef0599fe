"""A failure that repeats (a store down for an hour, retried every TTL) logged once, not once
a try: each kind of failure is said once until the thing works again, and that is said too."""

from __future__ import annotations

import logging
import threading


class SaidOnce:
    """Which failures of one thing were logged since it last worked."""

    def __init__(self, log: logging.Logger, until: str = "it works again") -> None:
        self.log = log
        self.until = until  # said with each failure: when it is said again
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def failed(self, message: str) -> None:
        """Log `message` as a warning unless it was since the last `worked`."""
        with self._lock:
            if message in self._said:
                return
            self._said.add(message)
        self.log.warning("%s (said once until %s)", message, self.until)

    def worked(self, message: str) -> None:
        """Log `message` if a failure was logged since the last time it worked."""
        with self._lock:
            if not self._said:
                return
            self._said.clear()
        self.log.info("%s", message)


class SaidOnceEach:
    """A `SaidOnce` for each of many things, by key (each served alias's canary and shadow):
    at most `most` kept, all forgotten past it (a failure is then said once more)."""

    def __init__(self, log: logging.Logger, most: int = 1024) -> None:
        self.log, self.most = log, most
        self._each: dict[str, SaidOnce] = {}
        self._lock = threading.Lock()

    def of(self, key: str) -> SaidOnce:
        with self._lock:
            found = self._each.get(key)
            if found is None:
                if len(self._each) >= self.most:
                    self._each.clear()
                found = self._each[key] = SaidOnce(self.log)
            return found


MOST_SAID = 256  # texts `warn_once` keeps (all forgotten past it: each said once more)
_said_texts: set[str] = set()
_said_lock = threading.Lock()


def warn_once(log: logging.Logger, message: str, *args: object) -> None:
    """`message % args` as a warning once a process: the detail of a failure that repeats on
    every request or shadow copy (onnxruntime's whole text for a model that cannot answer a
    batch size), which each one's own line (the 5xx's ERROR, the shadow's said reason) and the
    metrics count; a WARNING a request flooded the log group."""
    text = message % args
    with _said_lock:
        if text in _said_texts:
            return
        if len(_said_texts) >= MOST_SAID:
            _said_texts.clear()
        _said_texts.add(text)
    log.warning("%s (said once in this process)", text)
