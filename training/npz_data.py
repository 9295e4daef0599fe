"""Reading an .npz data set (`np.savez`): one feature array and one target array, checked as
a table's columns are (numbers, gaps, float32's range), never unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.cells import check_finite, check_float32, numeric_column
from training.errors import DataError
from training.spec import DatasetSpec

NPZ_FEATURES, NPZ_TARGET = "x", "y"
# A feature column missing in this share of its rows or more is refused; below it, each gap is
# filled with the training split's median (training.table_prep).
MAX_MISSING_SHARE = 0.5


def read_npz(path: Path, spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    """(features, target, feature names, target name) of an .npz data set, checked."""
    x_key, y_key = (spec.features or (NPZ_FEATURES,))[0], spec.target or NPZ_TARGET
    if spec.features and y_key in spec.features:  # the default target `y` too
        raise DataError(
            f"spec field 'dataset.features' lists {y_key!r}, the target array of {path.name}: "
            "a model cannot read its own label when predicting; take it out"
        )
    if spec.features and len(spec.features) > 1:  # all but the first were dropped unsaid
        raise DataError(
            f"spec field 'dataset.features': an .npz data set reads one feature array, and "
            f"this names {len(spec.features)} ({', '.join(spec.features)}): save them as one "
            "(np.savez(..., x=np.concatenate([a, b], axis=1))) and name it"
        )
    try:
        x, y = _npz_arrays(path, spec, x_key, y_key)
    except ValueError as exc:  # an object array (only pickle reads it), or no .npz at all
        raise DataError(f"{path.name}: {exc}; save numeric arrays (np.savez)") from None
    if x.dtype.kind not in "iuf":
        raise DataError(
            f"spec field 'dataset.features': {path.name} array {x_key!r} must be numeric; "
            f"it is {x.dtype}"
        )
    if y.ndim == 2 and y.shape[1] == 1:  # a column vector, as Keras and scikit-learn save it
        y = y[:, 0]
    if y.dtype.kind == "S":  # bytes (h5py, np.char.encode): their text, not "b'yes'" a class
        y = _decoded(y, path.name, y_key)
    if len(x) != len(y) or y.ndim != 1:
        raise DataError(
            f"{path.name}: {y_key!r} must be 1-D (or [N, 1]) with one value per row of {x_key!r} "
            f"(shapes {list(x.shape)} and {list(y.shape)})"
        )
    check_float32(x.reshape(len(x), -1), x_key, f"{path.name} array")  # before it is inf
    x = x.astype(np.float32)
    names = array_names(x, x_key)
    _check_array_gaps(x, names, path.name, x_key)
    return x, y, names, y_key


def _decoded(y: np.ndarray, file: str, key: str) -> np.ndarray:
    try:
        return np.char.decode(y, "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{file} array {key!r} holds bytes that are not UTF-8 text ({exc.reason} at byte "
            f"{exc.start}); save the labels as text (y.astype(str)) or as numbers"
        ) from None


def _check_array_gaps(x: np.ndarray, names: tuple[str, ...], file: str, key: str) -> None:
    """A NaN in a table of rows [rows, features] is a gap training fills as a CSV's empty cell
    (the training median, under half a column missing); elsewhere, and infinity, is refused."""
    if x.ndim != 2:
        nan = np.isnan(x)
        if nan.any():
            row = int(np.argwhere(nan)[0][0])
            raise DataError(
                f"{file} array {key!r} has a NaN at row {row}; training fills gaps only in a "
                f"table of rows [rows, features] (this array is {list(x.shape)}): replace it "
                "with a number"
            )
        check_finite(x, key, f"{file} array")
        return
    gaps = (
        "; training fills gaps (NaN) only in features missing under half their values: fill "
        "more in, or drop the feature from the array"
    )
    for i, name in enumerate(names):
        numeric_column(
            x[:, i],
            name,
            role=f"{file} array {key!r} feature",
            fix="; drop the feature from the array",
            gaps=gaps,
            max_missing=MAX_MISSING_SHARE,
        )


def _npz_arrays(
    path: Path, spec: DatasetSpec, x_key: str, y_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """The features and target arrays; numpy's ValueError for an object array or a file
    that is no .npz (allow_pickle=False: nothing in it is ever unpickled)."""
    with np.load(path, allow_pickle=False) as data:
        if spec.exclude:
            raise DataError(
                "spec field 'dataset.exclude' drops columns of a CSV or Parquet table; "
                f"{path.name} holds arrays {data.files}"
            )
        for key, field in ((x_key, "dataset.features"), (y_key, "dataset.target")):
            if key not in data.files:
                raise DataError(
                    f"spec field '{field}': {path.name} has no array {key!r}; "
                    f"arrays are {data.files}"
                )
        return data[x_key], data[y_key]


def array_names(x: np.ndarray, key: str = "x") -> tuple[str, ...]:
    width = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    return tuple(f"{key}{i}" for i in range(width))
