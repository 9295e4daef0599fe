"""The alias a publish points at its new version (`--alias`): the one step after the version
exists, so a refusal there must say that it does."""

from __future__ import annotations

from functions.runtime.errors import AiaasError
from functions.runtime.registry import Registry


def point_alias_at_published(registry: Registry, name: str, alias: str, version: str) -> None:
    """`set_alias` after `name:version` was published. A refusal (a full or read-only store,
    access denied on aliases/) was said as the store's error alone: nothing said the version
    existed, and the natural retry published (or trained and published) the same model again
    as the next version. It now names the version and the command that finishes the job."""
    try:
        registry.set_alias(name, alias, version)
    except AiaasError as exc:
        said = AiaasError(
            f"published {name}:{version}, but could not point {alias!r} at it: {exc.message}; "
            f"once that is fixed, run `aiaas promote {name} {version} --alias {alias}` (not the "
            "publish again: it would be a new version)",
            public_message=exc.public_message,
        )
        said.status = exc.status  # the store's refusal's
        raise said from exc
