"""Which readers may serve a manifest: its `schema_version` and the fields it `requires`.

Every aiaas release before this rule reads a manifest whose `schema_version` is 1 and ignores
the fields it does not know, and refuses any other version. So a field whose meaning changes
the answers (`postprocessing.label_indexes`, a string input's `missing` or `strip`) was served
wrongly by an older function, silently, while an AWS deploy rolled: a CatBoost-shaped model's
label output answered class indexes (0/1 for classes 3/7).

The rule: a manifest that needs one of those fields to be served right is written with
`schema_version` 2 and lists them in `requires`; older readers refuse it (a 503 that names the
schema version) instead of mis-serving it. Any other manifest stays version 1, as before, and
every release reads it. A reader refuses a `requires` it does not know, so the next such field
is added to READS_FIELDS and needs no new version (docs/registry.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from functions.runtime.errors import ManifestError

if TYPE_CHECKING:
    from functions.runtime.manifest import ModelManifest

SCHEMA_VERSION = 1  # what every release reads; a manifest that requires nothing stays at it
REQUIRES_VERSION = 2  # a manifest with `requires`: releases before the rule refuse it
READS = (SCHEMA_VERSION, REQUIRES_VERSION)
# The fields an older reader would ignore and so answer wrongly, that this release serves.
READS_FIELDS = ("label_indexes", "missing", "strip", "na_categories")

_UPGRADE = (
    "it was published by a newer aiaas than this one: upgrade the functions and `aiaas serve` "
    "(then the CLI) to that release"
)


class NewerManifest(ManifestError):
    """A manifest of a later schema, or requiring a field this release does not serve by."""


def requirements(manifest: ModelManifest) -> tuple[str, ...]:
    """The fields of `manifest` a reader must apply to serve it right, in READS_FIELDS order."""
    post = manifest.postprocessing
    used = {
        "label_indexes": post is not None and post.label_indexes,
        "missing": any(spec.missing is not None for spec in manifest.inputs),
        "strip": any(spec.strip for spec in manifest.inputs),
        "na_categories": any(s.na_categories and s.missing for s in manifest.inputs),
    }
    return tuple(name for name in READS_FIELDS if used[name])


def schema_fields(manifest: ModelManifest, *, as_stored: bool = False) -> dict[str, Any]:
    """`schema_version` (and `requires`, when there is any) as the manifest is written: 2
    where an older reader would answer wrongly. `as_stored`: as the store holds them, for a
    manifest read from it (`stored_fields`), to show what readers of that file do: a version
    published under 1 by a release of 2026-12-02..06 is 2 by the rule, yet older readers
    serve it (wrongly); the control plane's GET and `aiaas show --json` said 2."""
    if as_stored and manifest.stored_schema:
        return dict(manifest.stored_schema)
    needed = requirements(manifest)
    if not needed:
        return {"schema_version": SCHEMA_VERSION}
    return {"schema_version": REQUIRES_VERSION, "requires": list(needed)}


def check_schema(data: Mapping[str, Any]) -> None:
    """Nothing if this release serves a manifest of `data`'s schema and requirements."""
    if "schema_version" not in data:
        raise ManifestError("manifest is missing required field 'schema_version'")
    schema = data["schema_version"]
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < SCHEMA_VERSION:
        raise ManifestError(
            f"manifest field 'schema_version' is {schema!r}; this runtime reads version "
            f"{SCHEMA_VERSION} or {REQUIRES_VERSION}"
        )
    if schema not in READS:
        raise NewerManifest(
            f"manifest field 'schema_version' is {schema}; this runtime reads version "
            f"{SCHEMA_VERSION} or {REQUIRES_VERSION}: {_UPGRADE}"
        )
    needed = data.get("requires", [])
    if not isinstance(needed, list) or not all(isinstance(n, str) for n in needed):
        raise ManifestError("manifest field 'requires' must be a list of strings")
    unknown = [name for name in needed if name not in READS_FIELDS]
    if unknown:
        raise NewerManifest(
            f"manifest field 'requires' names {', '.join(map(repr, unknown))}, which this "
            f"runtime does not apply (it applies {', '.join(READS_FIELDS)}): {_UPGRADE}"
        )


def stored_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """`schema_version` (and `requires`, where given) as `data` holds them (`check_schema`ed)."""
    found = {"schema_version": data["schema_version"]}
    return found | ({"requires": list(data["requires"])} if "requires" in data else {})
