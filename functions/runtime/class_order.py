"""The note for a classifier version whose classes are those of the version its name serves, in
another order. Predictions, compare, the shadow and a rollout's agreement match classes by name,
so nothing else says it, while class scores read by position and a file of class indices mean
another class at each place. Said by every path that publishes a version: `aiaas publish`
(infra/cli/publish_unlabelled.py) and `aiaas train --publish`, locally or as a control-plane
or Batch job (training/changes.py, into the manifest's `extras.changes`, its card and the
run's output), from this one function (leftovers8 3)."""

from __future__ import annotations

from functions.runtime.manifest import ModelManifest


def reordered_classes(
    served: ModelManifest, manifest: ModelManifest, *, relabel_hint: bool
) -> str | None:
    """The note (no `note: ` prefix) when `manifest`'s classes are `served`'s in another order;
    None when the order is the same or the classes differ (other notes say that). `relabel_hint`:
    its labels were given by hand (`publish --labels`), which may be out of the model's order,
    so the note says how to publish it in `served`'s; a trained version's come with its model."""
    mine, theirs = list(served.labels), list(manifest.labels)
    if mine == theirs or sorted(mine) != sorted(theirs):
        return None
    at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) if a != b)
    post = manifest.postprocessing
    scores = f"the {post.scores_output!r} output, " if post is not None else ""
    said = (
        f"{manifest.name}:{served.version} has the same classes in another order (its class "
        f"{at} is {mine[at]!r}, this version's {theirs[at]!r}): predictions name them as before, "
        f"but class scores read by position ({scores}an OIP tensor) and a file of class indices "
        "read another class there"
    )
    if not relabel_hint:
        return said
    listed = ",".join(mine) if len(mine) <= 20 else f"in {served.version}'s order"
    return (
        f"{said}; if this model's columns are in {served.version}'s order, publish it again "
        f"with --labels {listed}"
    )
