"""Model references (`name`, `name:version`, `name@alias`) and where a model's objects live.

models/<name>/versions/<version>/model.onnx | manifest.json | ...
models/<name>/aliases/<alias>.json
models/<name>/versions/.number-<int>   (the spelling that claimed a numeric version: `8`, `008`)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from functions.runtime import names
from functions.runtime.errors import BadRequest, InvalidName
from functions.runtime.manifest import MANIFEST_FILE, MODEL_FILE, ModelManifest
from functions.runtime.store import ObjectStore

DEFAULT_ALIAS = "production"  # what a bare model name resolves through, when it exists
# What a bare NAME picks, as `--help` says it (README "A reference is ...": the same rule).
DEFAULT_VERSION = (
    "its production alias, else its highest numeric version (a named one such as ci-903 or "
    "2024-06-01 only when it has no numeric version)"
)
DEFAULT_RULE = f"NAME alone: {DEFAULT_VERSION}"


@dataclass(frozen=True)
class Resolution:
    """What a reference serves: `manifest`, or a `canary` answering `weight` of requests."""

    manifest: ModelManifest
    canary: ModelManifest | None = None
    weight: float = 0.0
    shadow: ModelManifest | None = None  # replayed a `sample` share of requests, off their path
    sample: float = 0.0
    problem: str | None = None  # why the canary the alias names is not served (it is gone)
    shadow_problem: str | None = None  # why the shadow it names is not replayed (it is gone)


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of `version` or `alias` is set, or neither (default)."""

    name: str
    version: str | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version:
            return f"{self.name}:{self.version}"
        if self.alias:
            return f"{self.name}@{self.alias}"
        return self.name


def is_selector(value: object) -> bool:
    """`@alias` or `:version`, with names the registry accepts."""
    if not isinstance(value, str) or value[:1] not in ("@", ":"):
        return False
    if value[0] == "@":
        return names.is_alias_name(value[1:])
    try:
        names.version_name(value[1:])
    except InvalidName:
        return False
    return True


def selector_problem(text: str) -> str | None:
    """Why `text` cannot follow a model's name to pick what it serves (`aiaas serve
    --selector`, AIAAS_MODEL_SELECTOR), or None; '' picks the default. Without its @ or :,
    `staging` was glued to the name ('irisstaging': not found, blamed on the route)."""
    if not text or is_selector(text):
        return None
    return f"{text!r} is neither @ALIAS (e.g. @production) nor :VERSION (e.g. :3)"


def parse_ref(text: str) -> ModelRef:
    """Parse `name`, `name:version` or `name@alias`, validating each part."""
    if not isinstance(text, str):
        raise BadRequest("model reference must be a string")
    if "@" in text:
        name, _, alias = text.partition("@")
        return ModelRef(names.model_name(name), alias=names.alias_name(alias))
    if ":" in text:
        name, _, version = text.partition(":")
        return ModelRef(names.model_name(name), version=names.version_name(version))
    return ModelRef(names.model_name(text))


def version_sort_key(version: str) -> tuple[int, int, str]:
    """The registry's one version order, whose last is a bare name's default: named versions
    (anything not all digits: `ci-903`, `2024-06-01`, `1.10`) first, by text, then numbers by
    value, the highest last. `03` and `3` are both 3 and order by text, so no two versions
    tie (a page's `after` cursor would skip the other)."""
    numeric = version.isascii() and version.isdigit()
    return (1, int(version), version) if numeric else (0, 0, version)


def model_prefix(name: str) -> str:
    """The folder of all of a model's versions and aliases."""
    return f"models/{names.model_name(name)}"


def version_prefix(name: str, version: str) -> str:
    return f"{model_prefix(name)}/versions/{names.version_name(version)}"


def model_key(name: str, version: str) -> str:
    return f"{version_prefix(name, version)}/{MODEL_FILE}"


def manifest_key(name: str, version: str) -> str:
    return f"{version_prefix(name, version)}/{MANIFEST_FILE}"


def number_key(name: str, version: str) -> str:
    """The claim on a numeric version's number, one key for every spelling (`8`, `008`).
    Under `versions/` (where a training job's role may create files, only if absent) and
    named as no version can be (a leading '.'), beside the version folders, not in one."""
    return f"{model_prefix(name)}/versions/.number-{int(version)}"


def alias_key(name: str, alias: str) -> str:
    return f"{model_prefix(name)}/aliases/{names.alias_name(alias)}.json"


def watched_keys(store: ObjectStore, ref: ModelRef) -> tuple[str, ...]:
    """The keys whose change can change what `ref` resolves to (none for a pinned version):
    its alias record; for the default reference also the versions folder, and the manifest
    of each version still being published (its folder exists before its manifest does)."""
    return tuple(watched_keys_lazily(store, ref))


def watched_keys_lazily(store: ObjectStore, ref: ModelRef) -> Iterator[str]:
    """`watched_keys`, the pending manifests looked for only when asked for: a store that
    cannot stamp the alias record (S3) stops there, where finding them took a listing and a
    HEAD per version at every resolution (1,502 requests, 12 s for a model of 1,500 versions)."""
    if ref.version:
        return
    if ref.alias:
        yield alias_key(ref.name, ref.alias)
        return
    yield alias_key(ref.name, DEFAULT_ALIAS)
    folder = f"{model_prefix(ref.name)}/versions"
    yield folder
    for v in store.list_dirs(folder):
        if not store.exists(manifest_key(ref.name, v)):
            yield manifest_key(ref.name, v)


def extra_file_name(rel: str) -> str:
    """`rel` if it can name a file beside a version's model (a card, a vocabulary), else 400."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts) or rel in (MODEL_FILE, MANIFEST_FILE):
        raise BadRequest(f"invalid extra file name {rel!r}")
    if any(p.startswith(names.TEMP_PREFIX) for p in parts):  # the stores' own temp files
        raise BadRequest(
            f"invalid extra file name {rel!r}: no part may start with {names.TEMP_PREFIX!r}, "
            "which names a store's temp files (hidden from listings, swept as leftovers)"
        )
    return rel
