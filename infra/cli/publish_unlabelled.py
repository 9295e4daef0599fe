"""The note `aiaas publish` prints for a model published without labels whose output looks
like class scores: such a version answers the raw output (logits, say), with no `predictions`
and no `?top_k`, and nothing said so. Republishing a trained classifier's file without
`--labels` gave a version that answered differently from the one before it, without a word."""

from __future__ import annotations

from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.registry import Registry

SCORE_TYPES = ("float32", "float64", "float16")


def _score_like(spec: TensorSpec) -> bool:
    """A float [N, C] output, C of 2 or more: what a classifier's logits or scores look like."""
    return spec.dtype in SCORE_TYPES and len(spec.shape) == 2 and spec.shape[1] >= 2


def unlabelled_note(reg: Registry, manifest: ModelManifest) -> str | None:
    """A note for `manifest` (task other) when it may be a classifier published without its
    labels: the labels the model's newest version answered with, if it had them."""
    # One output alone: beside a label output (KMeans' ArgMin over its distances, an
    # IsolationForest's -1/1) the float one is no class scores, and --labels is refused.
    if manifest.task != "other" or len(manifest.outputs) != 1 or manifest.labels:
        return None
    spec = manifest.outputs[0]
    if not _score_like(spec):
        return None
    width = spec.shape[1]
    before = _newest_labels(reg, manifest.name)
    if before is not None and len(before[1]) == width:
        version, labels = before
        shown = ", ".join(labels[:5]) + (", ..." if len(labels) > 5 else "")
        given = ",".join(labels) if len(labels) <= 20 else f"with its {len(labels)} labels"
        return (
            f"warning: {manifest.name}:{version} answered labels ({shown}); this version has "
            f"none and answers output {spec.name!r} as it is: if it holds those class scores, "
            f"publish again with --labels {given}"
        )
    return (
        f"output {spec.name!r} {list(spec.shape)} is answered as it is; if it holds {width} "
        "class scores, --labels a,b,... makes predict answer labels (and ?top_k)"
    )


def _newest_labels(reg: Registry, name: str) -> tuple[str, tuple[str, ...]] | None:
    """(version, labels) of the model's newest published version with labels; None when it
    has none or cannot be read (a note, never a reason to fail a publish)."""
    try:
        versions = reg.versions(name, missing_ok=True)
        if not versions:
            return None
        newest = reg.manifest(name, versions[-1])
    except AiaasError:
        return None
    return (newest.version, newest.labels) if newest.labels else None
