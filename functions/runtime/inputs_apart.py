"""How one input of two versions differs, in the terms `aiaas show` uses.

`aiaas compare` (one file feeds both versions) and a rollout, canary or shadow (the candidate
answers the baseline's callers) refuse versions that read an input differently, and say how.
The shapes are compared as served: a graph whose batch is fixed at 1 runs any number of rows,
one call each (`fixed_batch.as_served`). They were said as served too, or as declared, one or
the other: `aiaas rollout mlp 3` said its input "takes shape [-1, 5]" where `aiaas show` says
[1, 5], and `aiaas compare mlp 1 4` said "x float32 [-1, 6] vs x float64 [1, 6]" where the
element type was the whole difference (review_rev8 5). Now each says what differs (the element
type, the shape, or both), each shape as declared, and a batch fixed at 1 says what it means.
"""

from __future__ import annotations

from collections.abc import Callable

from functions.runtime.fixed_batch import as_served, one_row_batch
from functions.runtime.manifest import ModelManifest, TensorSpec

FIXED_AT_ONE = "batch fixed at 1: any number of rows, run one by one"

ShapesFit = Callable[[TensorSpec, TensorSpec], bool]


def shape_said(manifest: ModelManifest, spec: TensorSpec) -> str:
    """`spec`'s shape as `aiaas show` gives it, with what a batch fixed at 1 means."""
    shown = str(list(spec.shape))
    return f"{shown} ({FIXED_AT_ONE})" if one_row_batch(manifest) else shown


def apart(
    mine: ModelManifest, theirs: ModelManifest, name: str, fits: ShapesFit
) -> tuple[str, str, str] | None:
    """How input `name`, which both versions have, differs: (a verb, `mine`'s, `theirs`'), as
    "is" float32 / float64, "takes shape" [1, 5] / [-1, 4], or both; None where it does not.
    `fits(mine's, theirs')` judges their shapes as served."""
    a, b = _spec(mine, name), _spec(theirs, name)
    shapes = not fits(_spec(as_served(mine), name), _spec(as_served(theirs), name))
    types = a.dtype != b.dtype
    if not shapes:
        return ("is", a.dtype, b.dtype) if types else None
    said_a, said_b = shape_said(mine, a), shape_said(theirs, b)
    if not types:
        return "takes shape", said_a, said_b
    return "is", f"{a.dtype} of shape {said_a}", f"{b.dtype} of shape {said_b}"


def _spec(manifest: ModelManifest, name: str) -> TensorSpec:
    return next(spec for spec in manifest.inputs if spec.name == name)
