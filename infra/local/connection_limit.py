"""How many connections a worker of `aiaas serve` holds (granian's `backpressure`).

granian counts connections, not requests: a permit per accepted connection, held until it
closes, idle or not; past them, new connections wait in the kernel's backlog, unanswered. So
the limit is set high, bounded by open files, and the request limit (`--max-in-flight`) is the
app's (infra/local/app.py). An idle connection is closed after the header timeout.
"""

from __future__ import annotations

import contextlib

# Connections a worker holds at most (granian's `backpressure`), and the open files kept for
# everything else (model files, the store, logs, metrics files, the pool's sockets). Measured
# (3,000 connections): ~9 KiB of memory an idle one, ~80 KiB one holding a head near the 64 KiB
# limit, so ~37 MiB for this many idle and ~330 MiB at most, until the header timeout.
MAX_CONNECTIONS = 4096
FILES_KEPT = 256
# Requests a worker admits at once unless `--max-in-flight` says (ServerLimits' default, and
# GatewayApp's, which counts them): one number for both.
MAX_IN_FLIGHT = 256


def connection_limit(max_in_flight: int) -> int:
    """How many connections a worker holds: MAX_CONNECTIONS, as far as the process's open-file
    limit allows (its soft limit is raised towards its hard one for them, as Go's runtime
    does: 1,024 is a common soft limit), and never fewer than `max_in_flight`. Each worker is a
    process with its own files, so this holds per worker."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to read
        return max(max_in_flight, MAX_CONNECTIONS)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_CONNECTIONS + FILES_KEPT
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
    files = wanted if soft == resource.RLIM_INFINITY else soft
    return max(max_in_flight, min(MAX_CONNECTIONS, files - FILES_KEPT))
