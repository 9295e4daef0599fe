"""What to save an .npz as for a command that reads .npy (`aiaas baseline`, `explain --file`,
`aiaas batch`),
and an .npy for one that reads .npz: a line of numpy to run, naming the arrays the file holds.
It named `['x']` whatever the .npz held, so for scikit-learn's `np.savez(f, X=X, y=y)` the
line it gave raised KeyError."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from functions.runtime.comparison.truth import LABEL_COLUMNS
from infra.cli.file_args import file_suffix


def other_arrays(path: Path, reads: str) -> str:
    """The refusal of an .npz (several arrays) or an .npy (one array, no labels) given to a
    command that reads the other, with the numpy line that saves what it reads."""
    if file_suffix(path) == ".npz":
        npy = path.with_suffix(".npy").name
        return (
            f"{path} is an .npz (several arrays); this command reads {reads}: for a model of "
            f"one input save its array as .npy (numpy: np.save({npy!r}, "
            f"np.load({path.name!r})[{_rows_array(path)!r}])); for one of several, write the "
            "rows as JSONL, one object a row, a field an input"
        )
    npz = path.with_suffix(".npz").name
    return (
        f"{path} is an .npy (one array, no labels); this command reads {reads}: save the rows "
        f"with their labels as .npz (numpy: np.savez({npz!r}, x=np.load({path.name!r}), "
        "y=LABELS)), or one array per input name beside the labels"
    )


def named_rows_array(message: str, path: Path) -> str:
    """`message` (batch's refusal of an .npz key, worded where the file is not at hand: in
    the store) with its numpy line naming the array the local file at `path` holds."""
    if file_suffix(path) != ".npz":
        return message
    return message.replace("['x'])", f"[{_rows_array(path)!r}])", 1)


def _rows_array(path: Path) -> str:
    """The name of the .npz's array of rows: its first that is no label array (`X` beside `y`),
    else `x` (a file numpy cannot list: the name the docs use)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            names = list(arrays.files)
    except (OSError, ValueError, zipfile.BadZipFile):
        return "x"
    return next((name for name in names if name.lower() not in LABEL_COLUMNS), "x")
