"""Which 2-D rows [A, B] are windows of features over time (a GRU's [steps, features], a 1-D
CNN's [features, steps]), not greyscale pictures: the one rule explanations (patches.py), drift
(drift/images.py), the card, the plots and a sent text's hint read. Light on purpose: the
predict path imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from functions.runtime.manifest import ModelManifest

SEQUENCE_MAX_FEATURES = 7  # a side of at most this many is features, not pixels (MIN_SIDE - 1)
# A side of up to this many fixed beside one of any length ([-1, 12]) is a window's features: no
# vision model exports an image of any height and a fixed width; a sequence of embeddings
# ([-1, 128], [-1, 768]) stays a picture unless its publish says otherwise.
WINDOW_MAX_FEATURES = 64
# Where `aiaas publish --window-features` records a window's features axis, in the manifest's
# `preprocessing` (older readers keep it and cut the row as an image, as they always did).
WINDOW_FIELD = "window_features_axis"
WINDOW_AXES = {"last": 1, "first": 0}  # the declaration: the row's features side


def declared_window(manifest: ModelManifest) -> str | None:
    """The features side ("last", "first") its publish declared the model's row to be a
    window of, else None (manifests before the declaration, and rows left to their shape)."""
    found = manifest.preprocessing.get(WINDOW_FIELD)
    return found if found in WINDOW_AXES else None


def features_axis(row: tuple[int, ...], window: str | None = None) -> int | None:
    """The features axis of a 2-D row (as the model declares it: -1 any) that is a window of
    features over time, else None (an image, a row of another rank). The ONE rule that
    explanations, drift, the card and the plots read: the side `window` names
    (`declared_window`: a [100, 12] row's shape cannot tell window from picture); else a side
    fixed at a few features, the last where both are; else a side fixed at up to
    WINDOW_MAX_FEATURES beside one of any length ([-1, 12]: a GRU's 12 sensors)."""
    if len(row) != 2:
        return None
    if window in WINDOW_AXES:
        return WINDOW_AXES[window]
    if 0 < row[1] <= SEQUENCE_MAX_FEATURES:
        return 1
    if 0 < row[0] <= SEQUENCE_MAX_FEATURES:
        return 0
    if row[0] == -1 and 0 < row[1] <= WINDOW_MAX_FEATURES:
        return 1
    return 0 if row[1] == -1 and 0 < row[0] <= WINDOW_MAX_FEATURES else None


def input_features_axis(manifest: ModelManifest) -> int | None:
    """`features_axis` of the model's one input's row, by its shape and its declaration."""
    if len(manifest.inputs) != 1:
        return None
    return features_axis(manifest.inputs[0].shape[1:], declared_window(manifest))


def window_problem(row: tuple[int, ...], window: str) -> str | None:
    """Why a model of input row `row` ([N] left off) cannot be declared a window of features
    on its `window` side; None when it can."""
    if window not in WINDOW_AXES:
        return f"the features side is {' or '.join(WINDOW_AXES)}; got {window!r}"
    if len(row) != 2:
        return (
            f"a window is a 2-D row [steps, features] or [features, steps]; its row is {list(row)}"
        )
    side = row[WINDOW_AXES[window]]
    if side == -1:
        return f"its row {list(row)} has no fixed number of features on its {window} side"
    return None
