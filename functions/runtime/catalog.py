"""Every model's published versions and alias names, from one listing of the store.

`aiaas models`, `aiaas serve`'s start and the control plane's model list want all models at
once: a listing a model (and another for its aliases) made `aiaas models` on S3 with 300 models
~900 ListObjectsV2 requests (26 s on moto); one walk of `models/` makes a request per 1,000 keys
(a version is 3-5 keys), and never more than the listings a model would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from functions.runtime import names
from functions.runtime.aliases import AliasTarget
from functions.runtime.errors import StoreError
from functions.runtime.manifest import MANIFEST_FILE
from functions.runtime.refs import model_prefix, version_sort_key
from functions.runtime.store import ObjectStore

if TYPE_CHECKING:
    from functions.runtime.registry import Registry


@dataclass
class Listed:
    """A model as the listing shows it: its published versions (in `version_sort_key` order)
    and the keys under its `aliases/` folder (read or judged by `Registry.alias_report`)."""

    versions: list[str] = field(default_factory=list)
    alias_keys: list[str] = field(default_factory=list)


def catalog(store: ObjectStore) -> dict[str, Listed]:
    """Models with at least one published version, by name in text order (stray folders with
    invalid names, and versions whose manifest is not written yet, left out)."""
    found: dict[str, Listed] = {}
    for key in store.list_keys("models"):
        parts = key.split("/")  # models/<name>/versions/<v>/manifest.json, .../aliases/<a>.json
        if len(parts) < 4 or not names.is_model_name(parts[1]):
            continue
        listed = found.setdefault(parts[1], Listed())
        if len(parts) == 5 and parts[2] == "versions" and parts[4] == MANIFEST_FILE:
            listed.versions.append(parts[3])
        elif len(parts) >= 4 and parts[2] == "aliases":
            listed.alias_keys.append(key)
    published = {n: m for n, m in sorted(found.items()) if m.versions}
    for listed in published.values():
        listed.versions.sort(key=version_sort_key)
    return published


def alias_targets(
    registry: Registry,
    name: str,
    keys: list[str] | None = None,
    versions: list[str] | None = None,
) -> tuple[dict[str, AliasTarget], list[str]]:
    """(alias -> target for the readable aliases, what is wrong with the other entries): one
    corrupt record or foreign file must not hide the model's other aliases. One read a record
    (`aiaas models` read each twice, version then split: 204 GETs for 102 aliases). `keys`: the
    model's `aliases/` keys, when a `catalog` listed them already; `versions`: its published
    versions, when known, to name an alias pointing at one that is not (`dangling`)."""
    prefix = f"{model_prefix(name)}/aliases/"
    found: dict[str, AliasTarget] = {}
    problems: list[str] = []
    for key in registry.store.list_keys(prefix.rstrip("/")) if keys is None else keys:
        entry = key[len(prefix) :]
        alias = entry.removesuffix(".json")
        if entry == alias or not names.is_alias_name(alias):
            problems.append(f"{key}: not an alias record (ignored)")
            continue
        try:
            target = registry.alias_target(name, alias)
        except StoreError as exc:
            problems.append(exc.message)
            continue
        if target is not None:
            found[alias] = target
    if versions is not None:
        problems.extend(dangling(name, found, versions))
    return found, problems


def dangling(name: str, found: dict[str, AliasTarget], versions: list[str]) -> list[str]:
    """What is wrong with each alias whose version, canary or shadow is not among `versions`
    (its manifest deleted behind the registry's back: prune never deletes an alias's target).
    Listed as healthy, such an alias served its other version alone, or answered 503."""
    published = set(versions)
    problems = []
    for alias, target in sorted(found.items()):
        shadow = None if target.shadow is None else target.shadow.version
        promote = f"aiaas promote {name} VERSION --alias {alias}"
        for role, version, fix in (
            ("", target.version, promote),
            ("its canary ", target.canary, promote),
            ("its shadow ", shadow, f"aiaas shadow {name} --off --alias {alias}"),
        ):
            if version is not None and version not in published:
                problems.append(
                    f"alias {alias!r} points at {role}version {version!r}, which is not in the "
                    f"registry (its manifest is gone): {fix}"
                )
    return problems
