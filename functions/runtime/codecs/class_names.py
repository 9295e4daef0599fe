"""The label of each class score column a classifier answers, for the predict API and batch."""

from __future__ import annotations

import functools

from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest


def class_names(manifest: ModelManifest, classes: int) -> tuple[str, ...]:
    """The label of each of `classes` score columns: the manifest's, or "0", "1", ... for a
    model that names none. A count that differs from the manifest's labels is an error: the
    labels were silently replaced by indices ('0' answered where no such class exists)."""
    if len(manifest.labels) == classes:
        return manifest.labels
    if manifest.labels:
        text = (
            f"{manifest.name}:{manifest.version} answered {classes} class score"
            f"{'s' * (classes != 1)} a row but names {len(manifest.labels)} classes; republish "
            "it with aiaas publish (its scores output or activation does not fit its labels)"
        )
        raise AiaasError(text, public_message=text)
    return _index_labels(classes)


@functools.lru_cache(maxsize=64)
def _index_labels(classes: int) -> tuple[str, ...]:
    """The labels "0", "1", ... of a model that names none (built once, not per request)."""
    return tuple(str(i) for i in range(classes))
