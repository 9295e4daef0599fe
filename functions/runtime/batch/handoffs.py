"""The GIL handed between threads every millisecond while a span is scored, not every 5.

A span is parsed on one thread and scored on another (job.py). The parsing thread holds the
GIL almost all the time (simdjson, splitting and joining lines, orjson); the scoring thread
needs it only for moments around each onnxruntime run (casting a chunk, checking its answer),
and each time waited for the parser to let go: up to Python's switch interval, 5 ms, several
times a chunk. onnxruntime then started late, and the parser later waited for its answer.
With 1 ms, 1M CSV rows scored in 2.37-2.43 s against 2.48-2.52 s (3 runs each, taking turns,
2 cores). The interval is the interpreter's, so it is set while at least one span is scored
and put back when the last one ends; a batch function or `aiaas batch` runs nothing else.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

SWITCH_S = 0.001

_lock = threading.Lock()
_active = 0
_previous = 0.0


@contextlib.contextmanager
def quick_handoffs() -> Iterator[None]:
    """Hand the GIL over at least every SWITCH_S inside the block (nested or from several
    threads: the first to enter sets it, the last to leave puts the previous value back)."""
    global _active, _previous
    with _lock:
        if _active == 0:
            _previous = sys.getswitchinterval()
            sys.setswitchinterval(min(_previous, SWITCH_S))
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                sys.setswitchinterval(_previous)
