"""How one input of two versions differs, in the terms `aiaas show` uses.

`aiaas compare` (one file feeds both versions) and a rollout, canary or shadow (the candidate
answers the baseline's callers) refuse versions that read an input differently, and say how.
The shapes are compared as served: a graph whose batch is fixed at 1 runs any number of rows,
one call each (`fixed_batch.as_served`). They were said as served too, or as declared, one or
the other: `aiaas rollout mlp 3` said its input "takes shape [-1, 5]" where `aiaas show` says
[1, 5], and `aiaas compare mlp 1 4` said "x float32 [-1, 6] vs x float64 [1, 6]" where the
element type was the whole difference (review_rev8 5). Now each says what differs (the element
type, the shape, or both), each shape as declared, and a batch fixed at 1 says what it means,
once, after both shapes: inside a rollout's own parentheses, "[1, 6] (batch fixed at 1: ...)"
nested them, twice where both were fixed (review_rev10 4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from functions.runtime.fixed_batch import as_served, one_row_batch
from functions.runtime.manifest import ModelManifest, TensorSpec

FIXED_AT_ONE = "batch fixed at 1: any number of rows, run one by one"
FIXED_SAID = "a batch fixed at 1 takes any number of rows, run one by one"

ShapesFit = Callable[[TensorSpec, TensorSpec], bool]


def shape_said(manifest: ModelManifest, spec: TensorSpec) -> str:
    """`spec`'s shape as `aiaas show` gives it, with what a batch fixed at 1 means."""
    shown = str(list(spec.shape))
    return f"{shown} ({FIXED_AT_ONE})" if one_row_batch(manifest) else shown


class Apart(NamedTuple):
    """How an input differs: a verb ("is", "takes shape"), `mine`'s and `theirs'` as `aiaas
    show` gives them, and whether a shape said is a batch fixed at 1 (said once: FIXED_SAID)."""

    verb: str
    mine: str
    theirs: str
    fixed: bool = False


def apart(mine: ModelManifest, theirs: ModelManifest, name: str, fits: ShapesFit) -> Apart | None:
    """How input `name`, which both versions have, differs: "is" float32 / float64, "takes
    shape" [1, 5] / [-1, 4], or both; None where it does not. `fits(mine's, theirs')` judges
    their shapes as served."""
    a, b = _spec(mine, name), _spec(theirs, name)
    shapes = not fits(_spec(as_served(mine), name), _spec(as_served(theirs), name))
    types = a.dtype != b.dtype
    if not shapes:
        return Apart("is", a.dtype, b.dtype) if types else None
    said_a, said_b = str(list(a.shape)), str(list(b.shape))
    fixed = one_row_batch(mine) or one_row_batch(theirs)
    if not types:
        return Apart("takes shape", said_a, said_b, fixed)
    return Apart("is", f"{a.dtype} of shape {said_a}", f"{b.dtype} of shape {said_b}", fixed)


def _spec(manifest: ModelManifest, name: str) -> TensorSpec:
    return next(spec for spec in manifest.inputs if spec.name == name)
