"""The `aiaas serve` processes the running test started or still uses, so that a failing test
reports what they logged (tests/conftest.py) even when it failed inside a client call: a
scrape that met "connection refused" said nothing of why the server had gone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Logged:
    name: str  # e.g. "aiaas serve on port 41235"
    running: Callable[[], bool]
    tail: Callable[[], str]


SERVERS: list[Logged] = []


def started(logged: Logged) -> None:
    SERVERS.append(logged)


def before_test() -> None:
    """Forget the servers that have stopped (a module's fixture server runs on)."""
    SERVERS[:] = [server for server in SERVERS if server.running()]
