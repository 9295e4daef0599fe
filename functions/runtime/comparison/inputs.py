"""Whether one file can feed two versions: they must read the same inputs, as `aiaas compare`
reads its file once for both.

Which values an input takes (NaN, infinity: `finite`, `gaps`) is no part of that: the file is
read as the stricter of the two takes each input, so a row either version would refuse (a gap
that version 1 refuses and version 2, published once publish read the graph's Imputer, takes)
is a bad row, left out of the comparison and said so, not a reason to refuse the comparison.
"""

from __future__ import annotations

from dataclasses import replace

from functions.runtime.codecs.nulls import takes_missing
from functions.runtime.errors import InvalidInput
from functions.runtime.fixed_batch import as_served
from functions.runtime.inputs_apart import FIXED_SAID, apart, shape_said
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import text_input


def check_inputs(a: ModelManifest, b: ModelManifest) -> ModelManifest:
    """One file feeds both versions: they must read the same inputs (their descriptions, which
    training writes and `aiaas publish` does not, are no part of what they read; a dimension
    that one fixes and the other takes any of is read as fixed). Returns the manifest to read
    the file with: A's, each input taking only the values and shapes both versions do."""
    text = text_input(a)
    if text is not None:  # the file is read as A reads it: text, which each version
        _check_text(a, b, text.field)  # tokenizes its own way
        return a
    # By name: a table served one input per column reads its file's columns in their order,
    # and a week whose CSV had them in another order was refused ("read different inputs")
    # though every row feeds each version by input name (hunt_journey8 3).
    if _alike(as_served(a), as_served(b)) and a.features == b.features:
        theirs = {spec.name: spec for spec in b.inputs}
        return replace(a, inputs=tuple(_stricter(s, theirs[s.name]) for s in a.inputs))
    raise InvalidInput(
        f"versions {a.version} and {b.version} of {a.name} read different inputs: "
        f"{_difference(a, b)}; compare scores one file with both, so they must match"
    )


def _difference(a: ModelManifest, b: ModelManifest) -> str:
    """What differs, in the terms `aiaas show` uses (`inputs_apart`): the first input one
    version lacks or reads otherwise, else the features; else both versions' inputs in full."""
    for x, y in ((a, b), (b, a)):
        lacked = [spec.name for spec in x.inputs if spec.name not in {s.name for s in y.inputs}]
        if lacked:
            return f"version {x.version} reads input {lacked[0]!r}, which {y.version} does not"
    for spec in a.inputs:  # both read these names now
        found = apart(a, b, spec.name, _fits)
        if found is not None:
            said = f"{found.verb} {found.mine}, {b.version}'s {found.theirs}"
            fixed = f" ({FIXED_SAID})" if found.fixed else ""
            return f"version {a.version}'s input {spec.name!r} {said}{fixed}"
    if a.features != b.features:
        said = f"version {a.version} {_features(a)}, {b.version} {_features(b)}"
        if sorted(a.features) != sorted(b.features):
            return said
        return (  # one input read by position: a row of A's order is other features to B
            f"{said}: the same features in another order, so a row means other values to "
            f"each (a training spec without dataset.features takes its file's column order: "
            f"retrain {b.version} with dataset.features: [{', '.join(a.features)}])"
        )
    return f"{_inputs(a)} vs {_inputs(b)}"


def _features(manifest: ModelManifest) -> str:
    shown = ",".join(manifest.features[:6]) + (",..." if len(manifest.features) > 6 else "")
    return f"reads features {shown}" if manifest.features else "names no features"


def _check_text(a: ModelManifest, b: ModelManifest, field: str) -> None:
    """B must read raw text as A does, from the same record `field`."""
    theirs = text_input(b)
    if theirs is not None and theirs.field == field:
        return
    how = (
        f"from field {theirs.field!r}"
        if theirs is not None
        else "none (it was published without its tokenizer)"
    )
    raise InvalidInput(
        f"versions {a.version} and {b.version} of {a.name} read different inputs: {a.version} "
        f"reads raw text from field {field!r}, {b.version} {how}; compare scores one file "
        "with both, so they must read it alike"
    )


def _stricter(mine: TensorSpec, theirs: TensorSpec) -> TensorSpec:
    """`mine` taking NaN and infinity only where both versions take them, and each row
    dimension fixed where either version fixes it (a row only one version takes is a bad row,
    left out and counted, as a value only one takes is)."""
    finite = mine.finite or theirs.finite
    gaps = finite and takes_missing(mine) and takes_missing(theirs)
    row = tuple(x if x != -1 else y for x, y in zip(mine.shape[1:], theirs.shape[1:], strict=True))
    return replace(mine, finite=finite, gaps=gaps, shape=(*mine.shape[:1], *row))


def _fits(mine: TensorSpec, theirs: TensorSpec) -> bool:
    """Whether two versions' shapes (as served) take a common row: the same batch, each row
    dimension the same or any (-1) in one of them. A window of 50 steps and its re-export of any length were
    refused as reading different inputs, where a rollout takes the one for the other
    (hunt_journey9 2)."""
    if mine.rank != theirs.rank or mine.shape[:1] != theirs.shape[:1]:  # a batch fixed at 2
        return False
    return all(x == y or -1 in (x, y) for x, y in zip(mine.shape, theirs.shape, strict=True))


def _alike(a: ModelManifest, b: ModelManifest) -> bool:
    """The same inputs by name, in any order, of the same element types, their shapes fitting."""
    theirs = {spec.name: spec for spec in b.inputs}
    return len(a.inputs) == len(theirs) and all(
        x.name in theirs and x.dtype == theirs[x.name].dtype and _fits(x, theirs[x.name])
        for x in a.inputs
    )


def _inputs(manifest: ModelManifest) -> str:
    return ", ".join(f"{s.name} {s.dtype} {shape_said(manifest, s)}" for s in manifest.inputs)
