"""A split alias whose main version fails to load (`ModelPool.load_routed`): its canary answers
the share the routing key sends to it, and the main's share is answered 503 naming the version
and why (`Routed.broken`), rather than every request 503 (the canary's callers too, as before
2026-12-07) or the main's callers moved to a version they were never routed to.

Only a version the alias names answers, and only its own callers: one key keeps its version.
The store failing is not this case (`StoreError`: the recorded version serves, served.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.runtime.errors import ModelUnavailable, StoreError
from functions.runtime.refs import Resolution
from functions.runtime.registry import ModelRef
from functions.runtime.routed import ROUTE_SPACE, Routed

if TYPE_CHECKING:
    from functions.runtime.pool import ModelPool


def canary_alone(
    pool: ModelPool, ref: ModelRef, found: Resolution, failure: ModelUnavailable
) -> Routed:
    """`found`'s canary loaded to answer its share while its main version failed with
    `failure`; `failure` itself, raised again, when there is no canary or it fails too."""
    canary = found.canary
    if canary is None or isinstance(failure, StoreError):
        raise failure
    try:
        loaded = pool.load(canary)
    except Exception:
        raise failure from None  # nothing of the split answers: the main's reason says why
    main = found.manifest.version
    cut = round(found.weight * ROUTE_SPACE)
    problem = f"main version {main} not loaded: {failure.message}"
    pool.routing_said.of(str(ref)).failed(
        f"{ref}: {problem}; its canary {canary.version} answers its own "
        f"{found.weight:.4g} share, and requests routed to {main} are answered 503"
    )
    sample = found.sample if found.shadow else 0.0
    routed = Routed(
        loaded, None, cut, ref.name, found.shadow, sample, problem, broken=(main, failure)
    )
    pool.serve(ref, routed)
    return routed
