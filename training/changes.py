"""What a retrained version changes against the version its name serves now.

A weekly job retrains from one spec on each week's file, and the file moves as real data does:
a class absent this week, a new one, columns in another order, a new category, last week's
file left in place. `aiaas train --publish` said none of it (hunt_journey8 2): a class dropped
or added moves the score columns of the classes after it (`stay` column 1 in week 1, 2 once
`downgrade` came), so an OIP client or a batch-output reader taking `logits` / `pred_logits_1`
by position read another class with a 200 after a promote; columns in another order made a
positional row read as other features. So a run compares its manifest with the served one's
(the `production` alias's version, else the newest) and says what differs: warnings for what
callers of that version would get wrong or refused, notes for what is only new. They go to
stderr, `--json`'s `warnings` (warnings only), the manifest's `extras.changes` and the card.
The same classes in another order are the note `aiaas publish` gives (runtime/class_order.py).
"""

from __future__ import annotations

import contextlib
from typing import Any

from functions.runtime.class_order import reordered_classes
from functions.runtime.codecs.nulls import takes_missing
from functions.runtime.errors import AiaasError
from functions.runtime.manifest import ModelManifest
from functions.runtime.refs import DEFAULT_ALIAS
from functions.runtime.registry import Registry

SHOWN = 5  # names listed in a line, then "and N more"


def served(registry: Registry, name: str) -> ModelManifest | None:
    """The version the bare name serves (production's, else the newest); None for a new model
    or one whose records cannot be read (the run is no place to fail for that)."""
    with contextlib.suppress(AiaasError):
        version = registry.alias(name, DEFAULT_ALIAS)
        if version is None:
            versions = registry.versions(name, missing_ok=True)
            version = versions[-1] if versions else None
        return None if version is None else registry.manifest(name, version)
    return None


def changes(before: ModelManifest, after: ModelManifest) -> dict[str, Any]:
    """`extras.changes`: the version compared with, and the warnings and notes. A served
    manifest of a layout these checks do not expect (hand-edited: a `preprocessing.columns`
    entry that is no mapping) is a note that it could not be compared: an AttributeError
    stopped `aiaas train` after training (rev14 6); a comparison is never a reason to fail."""
    ref = f"{before.name}:{before.version}"
    try:
        return _changes(ref, before, after)
    except Exception as exc:  # any layout: the run goes on, said so
        said = f"{type(exc).__name__}: {exc}"
        return {"against": ref, "warnings": [], "notes": [f"could not compare with {ref} ({said})"]}


def _changes(ref: str, before: ModelManifest, after: ModelManifest) -> dict[str, Any]:
    warnings: list[str] = []
    notes: list[str] = []
    if before.file.sha256 == after.file.sha256:
        warnings.append(
            f"the same model file as {ref} (sha256 {after.file.sha256[:12]}...): this data and "
            "spec train the very model it is; was the data file replaced with the new one?"
        )
    # The same classes in another order: the note `aiaas publish` gives, from the same code.
    reordered = reordered_classes(before, after, relabel_hint=False)
    if reordered is not None:
        notes.append(reordered)
    else:
        _classes(ref, list(before.labels), list(after.labels), warnings, notes)
    _columns(ref, before, after, warnings)
    _categories(ref, before, after, warnings, notes)
    if _takes_gaps(before) and not _takes_gaps(after):
        warnings.append(
            f"{ref} takes missing numbers (null, NaN) and this version refuses them (its data "
            "had no gap): a caller sending one gets a 422"
        )
    return {"against": ref, "warnings": warnings, "notes": notes}


def _names(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _classes(
    ref: str, before: list[str], after: list[str], warnings: list[str], notes: list[str]
) -> None:
    if not before or not after:
        return
    gone = [c for c in before if c not in after]
    if gone:
        warnings.append(
            f"class {_names(gone)} of {ref} is in no row of this data: this version never "
            "answers it"
        )
    new = [c for c in after if c not in before]
    if new:
        notes.append(f"new class {_names(new)}, which {ref} does not answer")
    moved = [c for c in after if c in before and before.index(c) != after.index(c)]
    if moved:
        said = ", ".join(
            f"{c!r} now column {after.index(c)} (was {before.index(c)})" for c in moved[:SHOWN]
        )
        warnings.append(
            f"the classes' score columns moved against {ref}: {said}; a client or batch-output "
            "reader taking the scores by position (OIP `logits`, `pred_logits_<i>`) reads "
            "another class (the labels answered are right)"
        )


def _read(manifest: ModelManifest) -> list[str]:
    """The columns a version reads: a table's, else its inputs'."""
    named = manifest.preprocessing.get("feature_names") or manifest.features
    return list(named) if named else [spec.name for spec in manifest.inputs]


def _columns(ref: str, before: ModelManifest, after: ModelManifest, warnings: list[str]) -> None:
    mine, theirs = _read(before), _read(after)
    new = [c for c in theirs if c not in mine]
    gone = [c for c in mine if c not in theirs]
    if len(new) == len(gone) == 1:  # one line, as the README promises "renamed" (rev14 7)
        warnings.append(
            f"reads column {new[0]!r} where {ref} reads {gone[0]!r} (renamed?): its callers "
            f"send {gone[0]!r}, not {new[0]!r} (a record lacking it is a 422; a rollout or "
            "canary from it is refused)"
        )
    elif new or gone:
        if new:
            warnings.append(
                f"reads column {_names(new)}, which {ref} does not: its callers do not send it "
                "(a record lacking it is a 422; a rollout or canary from it is refused)"
            )
        if gone:
            warnings.append(f"no longer reads column {_names(gone)}, which {ref} reads")
    types, now = _types(before), _types(after)
    for column, dtype in now.items():  # a table's column read as text now, or as numbers
        if types.get(column, dtype) != dtype:
            warnings.append(
                f"reads column {column!r} as {dtype} where {ref} reads {types[column]}: a "
                "value its callers send is refused (a 422; a rollout or canary from it is "
                "refused too); a column is text when most of its cells are no number"
            )
    inputs, was = [spec.name for spec in after.inputs], [spec.name for spec in before.inputs]
    if not new and not gone and sorted(inputs) != sorted(was):
        # One input `x` then, one per column now (a text column came), or back: rows sent by
        # position in simple JSON `inputs` are laid out otherwise too. Only renamed (`X` from a
        # scikit-learn export, `x` from aiaas train): those rows are read alike, OIP tensors
        # named as before are not (rev14 5).
        rows = " and rows sent by position (simple JSON `inputs`)" * (len(inputs) != len(was))
        warnings.append(
            f"takes input {_names(inputs)} where {ref} takes {_names(was)}: OIP tensors named "
            f"as {ref} reads them{rows} are refused by this version (a rollout or canary from "
            "it is refused too)"
        )
    positional = bool(before.features) and bool(after.features)  # one input x, by position
    if not new and not gone and mine != theirs and positional:
        warnings.append(
            f"reads its features in another order than {ref} ({', '.join(theirs)}; it: "
            f"{', '.join(mine)}): a row sent by position (simple JSON `inputs`, an OIP tensor) "
            "would be read as other features (a rollout or canary is refused); keep the order "
            f"with `dataset.features: [{', '.join(mine)}]` in the spec"
        )


def _types(manifest: ModelManifest) -> dict[str, str]:
    """Each column's element type: its input's, or the one input's that reads all features."""
    if manifest.features and len(manifest.inputs) == 1:
        return dict.fromkeys(manifest.features, manifest.inputs[0].dtype)
    return {spec.name: spec.dtype for spec in manifest.inputs}


def _categories(
    ref: str, before: ModelManifest, after: ModelManifest, warnings: list[str], notes: list[str]
) -> None:
    mine = before.preprocessing.get("columns") or {}
    for column, described in (after.preprocessing.get("columns") or {}).items():
        was = (mine.get(column) or {}).get("categories")
        now = described.get("categories")
        if not was or not now:
            continue
        new = [c for c in now if c not in was]
        gone = [c for c in was if c not in now]
        if new:
            notes.append(
                f"column {column!r}: new category {_names(new)} ({ref} reads it as unseen: "
                "all zeros)"
            )
        if gone:
            warnings.append(
                f"column {column!r}: category {_names(gone)} of {ref} is in no training row "
                "of this data: this version reads it as unseen (all zeros)"
            )


def _takes_gaps(manifest: ModelManifest) -> bool:
    return any(takes_missing(spec) for spec in manifest.inputs if spec.dtype.startswith("float"))
