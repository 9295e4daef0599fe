"""Store work a request does on the side: run on a thread, waited for only briefly.

The drift monitor and the capture buffer write (and the monitor reads) the store at the end of
a request, once an interval. Against a store that answers, the request waits for the work as
before (tens of ms), so Lambda never freezes the container in the middle of it. Against a hung
store (S3 behind a network that drops packets) a call waits for the S3 client's timeouts and
retries, 30 s x 5 by default: the request now waits at most `WAIT_S` for it, and the work
goes on without it. Each caller keeps at most one such piece in flight (its own lock), so
hung threads never pile up.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from functions.runtime.said_once import SaidOnce

WAIT_S = 2.0  # the most a request waits for its side work (a busy store answers in ~0.1 s)
_NO_THREAD = SaidOnce(logging.getLogger("aiaas.runtime"), "a thread starts again")


def host_wait_s(env: Mapping[str, str]) -> float | None:
    """How long a request waits for its side work where it runs: WAIT_S (None) in Lambda, where a
    container may be frozen once the handler returns; 0 in a long-lived server (`aiaas serve`),
    which answers other requests meanwhile and writes what is left at exit: there the wait held
    every request queued on its event loop for the write (capture at 100%, 2,000 req/s: p99
    6 ms against 0.3 ms; docs/monitoring.md)."""
    return 0.0 if long_lived(env) else None


def long_lived(env: Mapping[str, str]) -> bool:
    """Whether this process runs between requests (`aiaas serve`), so a timer can write what
    a burst left held; not in Lambda, which freezes a container once its handler returns."""
    return not env.get("AWS_LAMBDA_RUNTIME_API")


def run_aside(
    work: Callable[[], None],
    *,
    name: str,
    wait: float | None = None,
    holding: threading.Lock | None = None,
) -> bool:
    """Run `work` on a daemon thread; wait for it at most `wait` s (`WAIT_S`). Whether it
    finished meanwhile. `work` must handle its own errors: nothing reaches the caller.

    `holding`: the caller's one-in-flight lock, taken for `work`, which releases it. When no
    thread can be started (a process at its thread or memory limit: `can't start new thread`)
    `work` does not run: the lock is released here, said once, and False returned, so the
    caller's next try runs it. Before, the lock stayed held and no later try ever ran: a drift
    monitor wrote no snapshot again, a capture buffer held its lines until it dropped them."""
    thread = threading.Thread(target=work, name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:
        if holding is not None:
            holding.release()
        _NO_THREAD.failed(f"{name}: no thread could be started ({exc}); tried again next time")
        return False
    if holding is not None:
        _NO_THREAD.worked(f"{name}: threads start again")
    thread.join(WAIT_S if wait is None else wait)
    return not thread.is_alive()
