"""What a reference serves (`Registry.resolve`, `Registry.resolve_split`): a pinned version's
manifest, or its alias's versions' manifests, each checked against the digest the alias record
holds for it (manifest_pins.py), or the newest version where a bare name has no alias.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import AiaasError, ModelNotFound, ModelUnavailable
from functions.runtime.manifest import ModelManifest
from functions.runtime.manifest_pins import ManifestPin, pins_of
from functions.runtime.refs import DEFAULT_ALIAS, ModelRef, Resolution

if TYPE_CHECKING:
    from functions.runtime.registry import Registry


def resolve(registry: Registry, ref: ModelRef) -> ModelManifest:
    """The manifest `ref` points at (its alias's main version when it splits traffic)."""
    if ref.version:
        return registry.manifest(ref.name, ref.version)
    alias = ref.alias or DEFAULT_ALIAS
    record = registry.alias_record(ref.name, alias)
    if record is None:
        return unaliased(registry, ref)
    return aliased(registry, ref.name, ManifestPin(alias, pins_of(record)), str(record["version"]))


def unaliased(registry: Registry, ref: ModelRef) -> ModelManifest:
    """`ref`'s alias is not there: a named alias's 404, else the newest version."""
    if ref.alias:
        raise ModelNotFound(
            f"alias {ref.alias!r} of model {ref.name!r} not found; point it at a "
            f"version with `aiaas promote {ref.name} VERSION --alias {ref.alias}`"
        )
    return registry.listing(ref.name).newest  # a LIST per 1,000 versions, not 1,000 files


def resolve_split(registry: Registry, ref: ModelRef) -> Resolution:
    """What `ref` serves, with the canary and its weight when its alias splits traffic."""
    if ref.version:
        return Resolution(registry.manifest(ref.name, ref.version))  # pinned
    alias = ref.alias or DEFAULT_ALIAS
    record = registry.alias_record(ref.name, alias)
    if record is None:  # read once: a model without the default alias read it twice
        return Resolution(unaliased(registry, ref))
    found, pin = AliasTarget.of(record), ManifestPin(alias, pins_of(record))
    main = aliased(registry, ref.name, pin, found.version)
    canary, problem = None, None
    if found.canary is not None:
        try:  # a canary gone from the store must not take the main version down with it
            canary = aliased(registry, ref.name, pin, found.canary)
        except AiaasError as exc:
            problem = exc.message
    shadow, sample, unshadowed = None, 0.0, None
    if found.shadow is not None:
        try:  # a broken shadow never stops the alias from serving
            shadow = registry.manifest(ref.name, found.shadow.version, pin)
            sample = found.shadow.sample
        except AiaasError as exc:
            unshadowed = exc.message
    weight = found.weight if canary else 0.0
    return Resolution(main, canary, weight, shadow, sample, problem, unshadowed)


def aliased(registry: Registry, name: str, pin: ManifestPin, version: str) -> ModelManifest:
    """The manifest of `version`, which `pin.alias` points at, checked against its digest."""
    # A dangling alias is the registry's fault, not the caller's: 503 naming the fix.
    try:
        return registry.manifest(name, version, pin)
    except ModelNotFound:
        message = (
            f"alias {pin.alias!r} of model {name!r} points at version {version!r}, which is not "
            "in the registry; point the alias at a published version"
        )
        raise ModelUnavailable(message, public_message=message) from None
