"""How an image row is cut into the patches its explanation attributes to (each patch a group
of pixels switched to the background together): the default patch side, the cap on patches.

A 2-D row with a side under MIN_SIDE, or one of any length beside a side of up to
WINDOW_MAX_FEATURES, or one its publish declared a window (`--window-features`), is no picture
but a window of features over time (a sensor window [T, F] of a GRU, or [F, T] of a Conv1d):
its patches are runs of steps of ONE feature, `patch` steps long (`features_axis`). Cut into squares like an image, a [50, 6] window's patches held 4
steps of sensors 0-3 together, and no answer could say which sensor moved the prediction."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from functions.runtime.errors import InvalidInput

# The rule of which 2-D rows are windows lives with the predict path's light modules (a sent
# text's hint reads it); importers have always found it here.
from functions.runtime.window_axis import SEQUENCE_MAX_FEATURES as SEQUENCE_MAX_FEATURES
from functions.runtime.window_axis import WINDOW_AXES as WINDOW_AXES
from functions.runtime.window_axis import WINDOW_FIELD as WINDOW_FIELD
from functions.runtime.window_axis import WINDOW_MAX_FEATURES as WINDOW_MAX_FEATURES
from functions.runtime.window_axis import declared_window as declared_window
from functions.runtime.window_axis import features_axis as features_axis
from functions.runtime.window_axis import input_features_axis as input_features_axis
from functions.runtime.window_axis import window_problem as window_problem

PATCH_NAME = re.compile(r"patch_r(\d+)_c(\d+)")  # a patch's name: its top and left pixel
PATCH_GROUPS = 16  # an image is cut into about this many patches unless a patch size is asked
MAX_PATCHES = 4096  # a 64 x 64 grid: finer, the coalitions needed outgrow any time budget


@dataclass(frozen=True)
class Grouping:
    names: list[str]
    columns: list[np.ndarray]  # flat positions in a row of each group
    patch: int | None
    shape: tuple[int, int] | None = None  # a patch's [rows, columns] of the row: a sequence's


def read_as(groups: Grouping) -> str:
    """What an explanation's `parameters.read_as` says its row was cut as: "window" (runs of
    steps of one feature) or "image" (square patches). A [100, 12] sensor window read as an
    image says so, where only its square patch_r0_c0 hinted it (`--window-features`)."""
    return "window" if groups.shape is not None else "image"


def sequence_patch(steps: int, features: int) -> int:
    """The steps of one feature a patch holds by default: as an image's side over one feature
    ([32, 1]: 32 one-step patches, as ever); over several, the fewest giving at most
    2 * PATCH_GROUPS patches in all ([50, 6]: 10 steps, 30 patches)."""
    if features == 1:
        return default_patch(steps, 1)
    runs = max(1, 2 * PATCH_GROUPS // features)
    return max(1, math.ceil(steps / runs))


def image_layout(row: tuple[int, ...]) -> tuple[int, int, str]:
    """(height, width, layout) of an image row: channels first ([C, H, W], C <= 4, "chw") or
    last ([H, W, C], "hwc"); a 2-D row is one channel ("hw")."""
    if len(row) == 2:
        return row[0], row[1], "hw"
    if len(row) == 3 and row[0] <= 4:
        return row[1], row[2], "chw"
    return row[0], row[1], "hwc"


def check_patch_count(height: int, width: int, size: int) -> None:
    """InvalidInput when `size` cuts the image into over MAX_PATCHES patches. Checked before
    they are built: `patch: 1` on an image of any size as large as the body allows (900 x 900)
    built 810,000 patches, 1.5 s and 250 MB, only for the time budget to refuse them."""
    patches = math.ceil(height / size) * math.ceil(width / size)
    if patches > MAX_PATCHES:
        least = next(
            s
            for s in range(size + 1, max(height, width) + 1)
            if math.ceil(height / s) * math.ceil(width / s) <= MAX_PATCHES
        )
        raise InvalidInput(
            f"patch {size} cuts this {height} x {width} image into {patches:,} patches; at "
            f"most {MAX_PATCHES:,} are explained: ask for patch {least} or more"
        )


def default_patch(height: int, width: int) -> int:
    """The patch side giving about PATCH_GROUPS patches: sqrt(H * W / PATCH_GROUPS) rounded,
    at most 25 patches for a square image and 32 for a 32-step sequence, as ever. On a thin
    image that side cut the short one into a single patch and the long one into hundreds (a
    1 x 20000 strip into 572: slow, noisy, or past MAX_PATCHES), so where it gives over
    2 * PATCH_GROUPS patches the side is the smallest that gives at most PATCH_GROUPS."""
    size = max(1, round(math.sqrt(height * width / PATCH_GROUPS)))
    if math.ceil(height / size) * math.ceil(width / size) <= 2 * PATCH_GROUPS:
        return size
    # No smaller side gives PATCH_GROUPS or fewer: the long side alone needs long / 16.
    size = max(size + 1, math.ceil(max(height, width) / PATCH_GROUPS))
    while math.ceil(height / size) * math.ceil(width / size) > PATCH_GROUPS:
        size += 1
    return size


def image_patches(
    row: tuple[int, ...],
    patch: int | None,
    layout: str | None = None,
    declared: tuple[int, ...] | None = None,
    window: str | None = None,
) -> Grouping:
    """`row`'s patches; `layout` when the row's own shape cannot tell (a small image of a
    model of any size: a 3 x 4 x 3 row is taken as channels first), the row as `declared`
    by a model of any size (a 6 x 7 image of an [N, -1, -1] model is no sequence), and its
    publish's `window` declaration (`declared_window`)."""
    axis = features_axis(declared or row, window)
    if axis is not None and (layout or "hw") == "hw":
        return _sequence_patches(row, patch, axis)
    height, width, guessed = image_layout(row)
    layout = layout or guessed
    if layout != guessed:  # channels last where the shape looked channels first
        height, width = row[0], row[1]
    size = default_patch(height, width) if patch is None else patch
    if size < 1 or size > max(height, width):
        raise InvalidInput(f"patch must be from 1 to {max(height, width)}; got {size}")
    check_patch_count(height, width, size)
    # Flat positions arranged [H, W, channels], whatever the row's layout.
    grid = np.arange(math.prod(row)).reshape(row)
    if layout == "hw":
        grid = grid[..., None]
    elif layout == "chw":
        grid = grid.transpose(1, 2, 0)
    names, columns = [], []
    for top in range(0, height, size):
        for left in range(0, width, size):
            names.append(f"patch_r{top}_c{left}")
            columns.append(np.sort(grid[top : top + size, left : left + size].reshape(-1)))
    return Grouping(names, columns, size)


def _sequence_patches(row: tuple[int, ...], patch: int | None, axis: int) -> Grouping:
    """A window's runs of `patch` steps of one feature each, named by their first cell as an
    image's patches are (`patch_r10_c2`: steps 10 on of feature 2 in a [T, F] row)."""
    steps, features = (row[0], row[1]) if axis == 1 else (row[1], row[0])
    size = sequence_patch(steps, features) if patch is None else patch
    if size < 1 or size > steps:
        raise InvalidInput(f"patch must be from 1 to {steps} (steps of one feature); got {size}")
    if features * math.ceil(steps / size) > MAX_PATCHES:
        least = math.ceil(steps / (MAX_PATCHES // features))
        raise InvalidInput(
            f"patch {size} cuts this {steps}-step window of {features} features into "
            f"{features * math.ceil(steps / size):,} patches; at most {MAX_PATCHES:,} are "
            f"explained: ask for patch {least} or more"
        )
    rows, columns = (size, 1) if axis == 1 else (1, size)
    grid = np.arange(math.prod(row)).reshape(row)
    names, groups = [], []
    for top in range(0, row[0], rows):
        for left in range(0, row[1], columns):
            names.append(f"patch_r{top}_c{left}")
            groups.append(np.sort(grid[top : top + rows, left : left + columns].reshape(-1)))
    return Grouping(names, groups, size, (rows, columns))
