"""How long a rollout's step waits for its move of the alias to reach every server."""

from __future__ import annotations

from functions.runtime.refs import alias_key
from functions.runtime.registry import Registry
from functions.runtime.rollout.plan import settle_after
from functions.runtime.settings import RuntimeSettings


def settle_s(registry: Registry, model: str, alias: str) -> float:
    """How long a moved alias takes to reach every server, so a step is not judged before: 0
    where servers stat the alias record on each request (a directory store), else
    AIAAS_ALIAS_TTL (60 s; on S3 a server re-reads an alias only that often) and the re-read's
    own time. Steps judged without it passed, or rolled a candidate back as "not served", on
    traffic not yet moved."""
    if registry.store.stamp(alias_key(model, alias)) is not None:
        return 0.0
    return settle_after(RuntimeSettings.from_env().alias_ttl)
