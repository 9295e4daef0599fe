"""The target of an alias write that sets its shadow (`Registry.set_shadow`): the alias's
current target with a shadow on, resampled or off, traffic unmoved. A rollout's move back
that also puts a user's shadow of its candidate back is one `set_alias` (with `shadow`), not
a move then a shadow write: one record, marked as a rollback's (rollout/moves.py `restore`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from functions.runtime.alias_pruned import published_target
from functions.runtime.alias_record import parse_alias_record
from functions.runtime.aliases import AliasTarget, Shadow, shadow_target

if TYPE_CHECKING:
    from functions.runtime.registry import Registry


def shadowed(
    registry: Registry, name: str, alias: str, version: str | None, sample: float
) -> Callable[[bytes | None], AliasTarget]:
    """The `choose` of a write replaying a `sample` of `alias`'s requests to `version` (None:
    none), checked first: a shadow is a published version (a 404 before any alias read)."""
    shadow = None if version is None else Shadow.parse({"version": version, "sample": sample})
    if shadow is not None:
        published_target(registry, name, shadow.version)

    def target(raw: bytes | None) -> AliasTarget:
        if raw is None:
            registry.versions(name)  # an unknown model reads as such, not as a missing alias
        record = None if raw is None else parse_alias_record(name, alias, raw)
        return shadow_target(name, alias, record, shadow)

    return target
