"""Rows of several sizes in one chunk: a JSONL file of images for a model of any height and
width (torch.onnx.export with H and W in `dynamic_shapes` / `dynamic_axes`).

One session call takes one tensor, so one image size a call. An NPY file holds one size by
construction; a JSONL line may hold any, and a user's folder of photos rarely shares one. So
rather than refuse the lines whose size differs from their neighbours' (which lines those are
would depend on where the file was cut into chunks), a chunk whose rows differ keeps them as a
one-dimensional object array of per-row arrays ("ragged"), and is scored one run of the model
per size, the answers put back in row order. A chunk of one size (every NPY, most JSONL) is
an ordinary array and never comes here: the common path costs one shape comparison a row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

Scorer = Callable[[dict[str, np.ndarray], int], dict[str, np.ndarray]]


def stacked(rows: Sequence[np.ndarray]) -> np.ndarray:
    """The rows as one array when they share a shape, else as a ragged object array."""
    first = rows[0].shape
    if all(row.shape == first for row in rows):
        return np.stack(rows)
    ragged = np.empty(len(rows), dtype=object)
    for index, row in enumerate(rows):
        ragged[index] = row
    return ragged


def is_ragged(value: np.ndarray) -> bool:
    """Whether `value` holds rows of several shapes (see `stacked`), not strings or numbers."""
    return (
        value.dtype == object
        and value.ndim == 1
        and len(value) > 0
        and (isinstance(value[0], np.ndarray))
    )


def size_groups(features: dict[str, np.ndarray], rows: int) -> list[np.ndarray]:
    """The row indices of each distinct row shape (over all ragged inputs), in order of first
    appearance: one run of a model (or one explanation request) a group."""
    groups: dict[tuple[tuple[int, ...], ...], list[int]] = defaultdict(list)
    ragged = [name for name, value in features.items() if is_ragged(value)]
    for index in range(rows):
        groups[tuple(features[name][index].shape for name in ragged)].append(index)
    return [np.asarray(indices) for indices in groups.values()]


def picked(features: dict[str, np.ndarray], indices: np.ndarray) -> dict[str, np.ndarray]:
    """The rows `indices` of one size group, each ragged input stacked into one array."""
    return {
        name: np.stack(list(value[indices])) if is_ragged(value) else value[indices]
        for name, value in features.items()
    }


def by_size(features: dict[str, np.ndarray], rows: int, score: Scorer) -> dict[str, np.ndarray]:
    """`score` run once per distinct row shape (`size_groups`), the outputs put back in row
    order; an output whose row shape differs between sizes (a segmentation map) comes back
    ragged, one array a row."""
    parts = [
        (indices, score(picked(features, indices), len(indices)))
        for indices in size_groups(features, rows)
    ]
    names = parts[0][1].keys() if parts else []
    return {name: in_order([(i, out[name]) for i, out in parts], rows) for name in names}


def in_order(parts: list[tuple[np.ndarray, np.ndarray]], rows: int) -> np.ndarray:
    """Arrays of some of `rows` rows each (at `indices`) as one array in row order (one array
    a row where their row shapes differ)."""
    shapes = {value.shape[1:] for _, value in parts}
    if len(shapes) == 1:
        first = parts[0][1]
        whole = np.empty((rows, *first.shape[1:]), dtype=first.dtype)
    else:
        whole = np.empty(rows, dtype=object)
    for indices, value in parts:
        if len(shapes) == 1:
            whole[indices] = value
            continue
        for index, row in zip(indices.tolist(), value, strict=True):
            whole[index] = row
    return whole
