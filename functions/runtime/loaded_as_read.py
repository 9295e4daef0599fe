"""A loaded version is reused for a manifest only if it was loaded from that manifest.

The pool keys what it holds by (model, version), and versions are immutable, so a load used to
return whatever it held under that key. But a manifest can be edited in the store and put back
(the 503's advice: a versioned bucket keeps the published one). A request pinning the version
(`/versions/1/`, not covered by the alias record's digest) loaded it as the edit said; once the
published bytes were back, the alias's resolution read and checked them, then served that copy:
its labels swapped, with a 200, until a restart. Now a held version loaded from another
manifest is dropped and loaded again as the manifest just read says.

Cost: a dataclass comparison at each resolution (identity first: the same object where nothing
was read again), nothing a request.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import TYPE_CHECKING

from functions.runtime.manifest import ModelManifest

if TYPE_CHECKING:
    from functions.runtime.model import LoadedModel

log = logging.getLogger("aiaas.runtime")


def loaded_from(
    models: MutableMapping[tuple[str, str], LoadedModel],
    padding: MutableMapping[tuple[str, str], int],
    manifest: ModelManifest,
) -> tuple[LoadedModel | None, ModelManifest | None]:
    """The held version if loaded from `manifest`, and the manifest of one dropped from
    `models` (and `padding`) because it was loaded from another, for the caller to release its
    cache entry off its lock. Called under the pool's lock."""
    key = (manifest.name, manifest.version)
    held = models.get(key)
    if held is None or held.manifest is manifest or held.manifest == manifest:
        return held, None
    log.warning(
        "%s:%s was loaded from a manifest.json other than the one now read for it (changed in "
        "the store since): loaded again as the store's says",
        *key,
    )
    del models[key]
    padding.pop(key, None)
    return None, held.manifest
