"""The sha256 of each version's manifest.json, recorded in the alias record that sends requests
to it (`"manifests": {"1": "<sha256>", ...}`), and checked by every copy that resolves the alias.

Each file a manifest lists is checked against it as it is loaded, but the manifest itself was
trusted as read: its labels swapped (or its inputs renamed, or a file's sha256 changed to a
replaced model's) in the store, every fresh copy (a cold start, a restart, a batch run) served
as the edit said: the swapped labels with a 200. Now each alias move records the digest of the
manifest of each version it sends requests to (main, canary, shadow), and a copy resolving the
alias refuses a manifest whose bytes differ from it: a 503 naming the version and the file, its
log line both digests. What it costs: one sha256 of a few KB a resolution (once a load and an
alias TTL, ~10 us), nothing a request.

A move reads each of its versions' manifests once more (a GET each, at most three) and is
refused (a 409) where one differs from the digest its alias's record, or the record's history,
holds for it, else another alias's record of the model (a LIST and a GET an alias, only for a
version its own alias never pinned): moved onto an edited manifest, the alias would record the
edit. Not covered (docs/registry.md): a pinned-version request (`name:version`: no alias record
names it), a manifest edited before any alias of the model was moved onto its version (the
move records it as found, after checking its files against it), an alias record edited
together with the manifest, and a record written before 2026-12-07 (no `manifests`: served as
it says until the next move records them).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from functions.runtime import names
from functions.runtime.errors import AiaasError, Conflict, IntegrityError, NotFound
from functions.runtime.manifest import MANIFEST_FILE
from functions.runtime.refs import manifest_key, model_prefix

if TYPE_CHECKING:
    from functions.runtime.aliases import AliasTarget
    from functions.runtime.registry import Registry

PINS = "manifests"  # the alias record's key: {version: sha256 of its manifest.json as stored}
_SHA256 = re.compile(r"[0-9a-f]{64}")
CHANGED = (
    "the manifest was changed in the store after the alias was moved onto the version: put the "
    "published manifest.json back (a versioned bucket keeps it), or publish the model again as "
    "a new version"
)


def manifest_digest(raw: bytes) -> str:
    """The sha256 a record holds for a manifest: of its bytes as stored."""
    return hashlib.sha256(raw).hexdigest()


def pins_of(record: Mapping[str, Any] | None) -> dict[str, str]:
    """A record's (or history entry's) digests by version; none where it has none (written by an
    older release) or they do not read as such (written by hand): read as before, unchecked."""
    pins = None if record is None else record.get(PINS)
    if not isinstance(pins, Mapping):
        return {}
    return {v: d for v, d in pins.items() if isinstance(d, str) and _SHA256.fullmatch(d)}


class ManifestPin:
    """What a manifest read through `alias` must hash to (`Registry.manifest`'s `pin`)."""

    def __init__(self, alias: str, pins: Mapping[str, str]) -> None:
        self.alias = alias
        self.pins = pins

    def check(self, name: str, version: str, raw: bytes) -> None:
        """IntegrityError (a 503) unless `raw` is the manifest the alias was moved onto."""
        expected = self.pins.get(version)
        if expected is None or (actual := manifest_digest(raw)) == expected:
            return
        alias = self.alias
        raise IntegrityError(
            f"{name}@{alias}: {manifest_key(name, version)}: sha256 {actual} is not the sha256 "
            f"recorded when {alias} was moved onto it: {expected} ({CHANGED}); refusing to "
            "serve it",
            public_message=f"model {name}:{version} failed its integrity check (its "
            f"{MANIFEST_FILE} is not the one alias {alias!r} was moved onto) and is not served",
        )


def pinned_for(
    registry: Registry, name: str, alias: str, before: dict[str, Any] | None, target: AliasTarget
) -> dict[str, str]:
    """The digests the record moving `alias` to `target` holds: each of its versions' manifest
    read now, a Conflict (the alias stays) where it is not the one recorded for it by `before`
    (the record the move replaces) or its history, else by another alias of the model (a
    promote from staging to production: staging's record holds what it was moved onto)."""
    recorded = {v: (d, alias) for v, d in history_pins(before).items()}
    others: dict[str, tuple[str, str]] | None = None  # read once, if a version needs them
    versions = (target.version, target.canary, target.shadow and target.shadow.version)
    pins = {}
    for version in dict.fromkeys(v for v in versions if v):
        actual = stored_digest(registry, name, version)
        if version not in recorded and others is None:
            others = _other_aliases_pins(registry, name, alias)
        expected, where = recorded.get(version) or (others or {}).get(version, (actual, alias))
        if actual != expected:
            text = (
                f"{name}@{alias} is not moved to version {version}: {name}:{version}'s "
                f"{MANIFEST_FILE} is not the one recorded when {where} was moved onto it (sha256 "
                f"{actual}, recorded {expected}); {CHANGED}; {alias} stays where it is"
            )
            raise Conflict(text, public_message=text)
        pins[version] = actual
    return pins


def history_pins(record: Mapping[str, Any] | None) -> dict[str, str]:
    """The digests `record` and its history hold, by version (the newest state's first)."""
    found: dict[str, str] = {}
    if record is not None:
        for state in reversed([record, *record.get("history", [])]):
            found.update(pins_of(state))
    return found


def _other_aliases_pins(registry: Registry, name: str, alias: str) -> dict[str, tuple[str, str]]:
    """(digest, alias) by version, from the model's other alias records (a LIST and a GET each:
    a move only, for a version its own alias never pinned); unreadable ones left out."""
    prefix = f"{model_prefix(name)}/aliases/"
    found: dict[str, tuple[str, str]] = {}
    for key in registry.store.list_keys(prefix.rstrip("/")):
        other = key[len(prefix) :].removesuffix(".json")
        if other == alias or not names.is_alias_name(other):
            continue
        with contextlib.suppress(AiaasError):  # a corrupt record vouches for nothing
            for version, digest in history_pins(registry.alias_record(name, other)).items():
                found.setdefault(version, (digest, other))
    return found


def stored_digest(registry: Registry, name: str, version: str) -> str:
    """The digest of `name:version`'s manifest as stored now (a GET); a version gone since the
    move checked it (pruned) is its 404, said as the registry says it."""
    try:
        return manifest_digest(registry.store.get_bytes(manifest_key(name, version)))
    except NotFound:
        registry.manifest(name, version)  # raises the version's own 404
        raise


def pins_cover(record: Mapping[str, Any], target: AliasTarget) -> bool:
    """Whether `record` holds a digest for each version `target` sends requests to."""
    pins = pins_of(record)
    versions = (target.version, target.canary, target.shadow and target.shadow.version)
    return all(v in pins for v in versions if v)
