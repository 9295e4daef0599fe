"""The note `aiaas publish` prints for a model published without labels whose output looks
like class scores: such a version answers the raw output (logits, say), with no `predictions`
and no `?top_k`, and nothing said so. Republishing a trained classifier's file without
`--labels` gave a version that answered differently from the one before it, without a word.
Likewise a version whose outputs are not named as those of the version the bare name serves
(the same inputs), a text version whose tokenizer reads token ids as other tokens
(`token_ids_change`), and a classifier whose classes are the served version's in another
order."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from functions.runtime.class_order import reordered_classes
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.rollout.same_inputs import difference
from infra.cli.publish_earlier import Earlier
from infra.cli.token_ids_change import published_note

SCORE_TYPES = ("float32", "float64", "float16")


def _score_like(spec: TensorSpec) -> bool:
    """A float [N, C] output, C of 2 or more: what a classifier's logits or scores look like."""
    return spec.dtype in SCORE_TYPES and len(spec.shape) == 2 and spec.shape[1] >= 2


def unlabelled_note(
    earlier: Earlier,
    manifest: ModelManifest,
    extra_files: Mapping[str, Path] | None = None,
    labels: bool = True,
) -> tuple[str, ...]:
    """Notes for `manifest`: when its outputs are not named as the served version's (the same
    inputs), and (task other, `labels`) when it may be a classifier published without its
    labels (the labels the model's newest version answered with, if it had them). Both: a
    version renamed and unlabelled (an int8 re-export) was told one of its two problems.
    `--task` (`labels` False) says what the model is, so no labels are guessed at; its outputs'
    names are what callers name whatever the task, so the renamed note stays."""
    renamed = _renamed_note(earlier, manifest)
    notes = () if renamed is None else (renamed,)
    ids = _ids_note(earlier, manifest, extra_files or {})
    notes = notes if ids is None else (*notes, ids)
    reordered = _reordered_note(earlier, manifest)
    notes = notes if reordered is None else (*notes, reordered)
    guessed = _labels_note(earlier, manifest) if labels else None
    return notes if guessed is None else (*notes, guessed)


def _reordered_note(earlier: Earlier, manifest: ModelManifest) -> str | None:
    """A note when this version's classes are those of the version the bare name serves in
    another order: predictions, compare, the shadow and a rollout's agreement match them by
    name, but class scores read by position and a file of class indices mean another class at
    each place. A retrain may order its classes anew (its --labels then name its own columns);
    --labels in another order than the model's columns make every answer another class, and
    nothing else at publish says so (leftovers7 3)."""
    try:
        served = earlier.served()
    except AiaasError:  # unreadable: a note, never a reason to fail a publish
        return None
    if served is None:
        return None
    said = reordered_classes(served, manifest, relabel_hint=True)
    return None if said is None else f"note: {said}"


def _ids_note(
    earlier: Earlier, manifest: ModelManifest, extra_files: Mapping[str, Path]
) -> str | None:
    """A warning when the version the bare name serves is a text model whose token ids this
    version's tokenizer reads as other tokens (hunt_journey6 1)."""
    try:
        served = earlier.served()
    except AiaasError:  # unreadable: a note, never a reason to fail a publish
        return None
    if served is None:  # none yet
        return None
    return published_note(earlier.reg, served, manifest, extra_files)


def _labels_note(earlier: Earlier, manifest: ModelManifest) -> str | None:
    """The note for a version without labels whose one output looks like class scores."""
    # One output alone: beside a label output (KMeans' ArgMin over its distances, an
    # IsolationForest's -1/1) the float one is no class scores, and --labels is refused.
    if manifest.task != "other" or len(manifest.outputs) != 1 or manifest.labels:
        return None
    spec = manifest.outputs[0]
    if not _score_like(spec):
        return None
    width = spec.shape[1]
    before = _newest_labels(earlier)
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


def _renamed_note(earlier: Earlier, manifest: ModelManifest) -> str | None:
    """A warning when the version the bare name serves (@production where set, else the newest:
    an experiment's outputs are no caller's) answers an output this one lacks, and this one
    takes its requests (`same_inputs`: where it does not, renaming would not make it rollable):
    torch's dynamo exporter, given no `output_names`, names a CNN's `linear_1` where the version
    before answered `logits`; a rollout or canary to it is refused (hunt_journey4 1), and
    publish said nothing."""
    try:
        newest = earlier.served()
    except AiaasError:  # unreadable: a note, never a reason to fail a publish
        return None
    if newest is None or difference(newest, manifest) is not None:  # none yet, or not rollable
        return None
    mine = [spec.name for spec in manifest.outputs]
    lost = [spec.name for spec in newest.outputs if spec.name not in mine]
    if not lost:
        return None
    return (
        f"warning: {manifest.name}:{newest.version} answered output {lost[0]!r}; this version "
        f"answers {', '.join(repr(name) for name in mine)}: requests naming {lost[0]!r} get a "
        f"422 from it and a rollout or canary from {newest.version} to it is refused; export it "
        f"with output_names={[spec.name for spec in newest.outputs]!r} to answer as before"
    )


def _newest_labels(earlier: Earlier) -> tuple[str, tuple[str, ...]] | None:
    """(version, labels) of the model's newest published version with labels; None when it
    has none, or it cannot be read (a note, never a reason to fail a publish)."""
    try:
        newest = earlier.newest()
    except AiaasError:
        return None
    return (newest.version, newest.labels) if newest is not None and newest.labels else None
