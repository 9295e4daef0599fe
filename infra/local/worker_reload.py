"""`aiaas serve --workers N` on SIGHUP: granian's supervisor starts each worker again (a new
one, then the old one stopped as by SIGTERM: its requests in flight answered), with what the
server read at start. granian says so at INFO ("HUP signal received, gracefully respawning
workers.."), below the level serve gives its log, so a reload left no line of its own: an
operator saw only new pids loading the models again, and could not tell a reload from
crashes or what it had read anew. server.py says this line as the reload starts.
"""

from __future__ import annotations

from collections.abc import Sequence


def reload_line(pids: Sequence[int | None]) -> str:
    """What a SIGHUP to a server of several workers reloads, said as it starts."""
    known = ", ".join(str(pid) for pid in pids if pid is not None)
    return (
        f"aiaas serve: SIGHUP: restarting its {len(pids)} workers one at a time (pids {known}), "
        "each answering its requests in flight first, with the flags and environment read at "
        "start (a change to them needs a restart); each new worker loads its models from the "
        "store again, at the versions their aliases point to now"
    )
