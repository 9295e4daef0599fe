"""An offloaded call's thread, as `aiaas serve`'s gateway app (infra/local/app.py) tracks it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class OffloadedCall:
    """An offloaded call's thread, and whether its caller was answered 504 without it: the
    thread's own request count (the function's, with its model's labels) is then dropped, as
    Lambda's is at its timeout, so that one request is not counted twice."""

    __slots__ = ("_abandoned", "_lock", "_thread")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._abandoned = False

    @contextlib.contextmanager
    def running(self, abandoned: set[int]) -> Iterator[None]:
        thread = threading.get_ident()
        with self._lock:
            self._thread = thread
            if self._abandoned:  # answered 504 between the thread taking it and now
                abandoned.add(thread)
        try:
            yield
        finally:
            with self._lock:
                self._thread = None
                abandoned.discard(thread)

    def abandon(self, abandoned: set[int]) -> None:
        with self._lock:
            self._abandoned = True
            if self._thread is not None:
                abandoned.add(self._thread)
