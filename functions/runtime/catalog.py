"""Every model's published versions and alias names, from one listing of the store.

`aiaas models`, `aiaas serve`'s start and the control plane's model list want all models at
once: a listing a model (and another for its aliases) made `aiaas models` on S3 with 300 models
~900 ListObjectsV2 requests (26 s on moto); one walk of `models/` makes a request per 1,000 keys
(a version is 3-5 keys), and never more than the listings a model would make.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from functions.runtime import names
from functions.runtime.manifest import MANIFEST_FILE
from functions.runtime.refs import version_sort_key
from functions.runtime.store import ObjectStore


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
