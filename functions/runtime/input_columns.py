"""A numeric model's rows as flat feature rows [N, F] and back: what explanations vary and drift
baselines bin.

A model with one numeric input has rows of that input's values (an image's flattened). A model
with several (skl2onnx gives a pandas DataFrame one [N, 1] input per column by default) has rows
of all its inputs' values side by side, in the model's input order; a column is named after its
input, or its input and index for an [N, k] one. Explanations and drift then see one feature per
column whatever the export, and a flat row goes back to the model as its feeds, so one batch is
still one onnxruntime call. A string (categorical) column's values stay strings: such a model's
flat rows are an object array, numbers and strings side by side (`strings` says which columns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime.dtypes import BY_NAME
from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.tensor_spec import NUMERIC

SUPPORTED = (
    "one numeric input of fixed row shape ([-1, F], or an image's [-1, C, H, W]), or one "
    "numeric, bool or string input per column ([-1], [-1, 1] or [-1, k] each, as skl2onnx exports "
    "a DataFrame; one string column alone too, as a text pipeline's [-1, 1])"
)


@dataclass(frozen=True)
class InputColumns:
    """The inputs a flat row is cut into, each's number of values a row, and the column names."""

    specs: tuple[TensorSpec, ...]
    widths: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def of(cls, spec: TensorSpec) -> InputColumns:
        """One input's rows, unnamed; its row shape may be dynamic (a text's token ids), and
        its width is then -1."""
        dims = spec.shape[1:]
        return cls((spec,), (-1 if -1 in dims else math.prod(dims),), ())

    @property
    def width(self) -> int:
        return sum(self.widths)

    @property
    def strings(self) -> tuple[int, ...]:
        """The flat columns that hold strings (a categorical column's input)."""
        return tuple(
            column
            for spec, start, width in self.blocks()
            if spec.dtype == "string"
            for column in range(start, start + width)
        )

    @property
    def picked(self) -> tuple[int, ...]:
        """The flat numeric columns whose values are names, not amounts: an embedding's ids
        (`index_rows`) and a bool input. A background centre there is a value its cluster
        holds, not their mean: the mean of ids 3 and 88 is an id neither row had."""
        return tuple(
            column
            for spec, start, width in self.blocks()
            if spec.index_rows or spec.dtype == "bool"
            for column in range(start, start + width)
        )

    @property
    def dtype(self) -> Any:
        """The numpy type flat rows are kept in: the inputs' own when they share one (with a
        string column, float64: what Kernel SHAP numbers its categories in)."""
        kinds = {BY_NAME[spec.dtype].numpy for spec in self.specs}
        return kinds.pop() if len(kinds) == 1 and not self.strings else np.float64

    def numeric(self) -> InputColumns:
        """These columns without the string ones (what drift bins)."""
        keep = [i for i, spec in enumerate(self.specs) if spec.dtype != "string"]
        strings = set(self.strings)  # once: each `strings` walks every input
        names = [n for c, n in enumerate(self.names) if c not in strings]
        return InputColumns(
            tuple(self.specs[i] for i in keep), tuple(self.widths[i] for i in keep), tuple(names)
        )

    def blocks(self) -> list[tuple[TensorSpec, int, int]]:
        """(input, its first flat column, its columns) for each input."""
        starts = np.cumsum((0, *self.widths[:-1])).tolist()
        return list(zip(self.specs, starts, self.widths, strict=True))

    def feeds(
        self, rows: np.ndarray, categories: Mapping[int, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """The model's inputs for flat `rows` [N, F], each in its own shape and type; with
        `categories`, a string column's values are numbers, indices into its categories."""
        feeds = {}
        for spec, start, width in self.blocks():
            block = rows if len(self.specs) == 1 else rows[:, start : start + width]
            if categories is not None and spec.dtype == "string":
                codes = block.astype(np.intp).reshape(len(rows), width)
                block = np.stack([categories[start + i][codes[:, i]] for i in range(width)], axis=1)
            shaped = block.reshape(len(rows), *spec.shape[1:])
            typed = as_type(shaped, BY_NAME[spec.dtype].numpy)
            feeds[spec.name] = np.ascontiguousarray(typed)
        return feeds

    def arrays(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Flat numeric `rows` [N, F] as the model's inputs, each in its own shape, the values
        as read (float64: the cast to the input's type, and its checks, are validation's)."""
        return {
            spec.name: rows[:, start : start + width].reshape(len(rows), *spec.shape[1:])
            for spec, start, width in self.blocks()
        }

    def flat(self, inputs: Mapping[str, np.ndarray], *, exact: bool = False) -> np.ndarray:
        """Flat rows [N, F] of the model's inputs, side by side: float64, or with a string
        column an object array (its strings, the other columns' values as floats). `exact`
        (what explanations vary): an integer float64 cannot hold (past 2^53: an id, a hash)
        is kept, the numbers in a wider float (`exact_floats`), the object array's too."""
        blocks = [np.asarray(inputs[spec.name]) for spec in self.specs]
        rows = len(blocks[0])
        number = exact_floats([b for b in blocks if b.dtype.kind in "iu"]) if exact else np.float64
        kind = object if self.strings else number
        return np.hstack(
            [
                b.reshape(rows, math.prod(b.shape[1:])).astype(  # not -1: no rows has no width
                    kind if b.dtype == object else number, copy=False
                )
                for b in blocks
            ]
        ).astype(kind, copy=False)

    def columns(self, rows: np.ndarray) -> dict[str, Any]:
        """Flat `rows` as a JSON `inputs` value predict takes: a batch for one input, else
        {input name: its rows} (a flat list for an [N, 1] one)."""
        if len(self.specs) == 1:
            return {"inputs": rows.reshape(len(rows), *self.specs[0].shape[1:]).tolist()}
        feeds = self.feeds(rows if rows.dtype == object else rows.astype(np.float64))
        return {"inputs": {name: value.tolist() for name, value in feeds.items()}}


# float64 holds every integer up to 2^53 exactly; past it, one in 2, 4, ... 1024 (int64).
EXACT_INTEGERS = 2**53


def exact_floats(blocks: list[np.ndarray]) -> Any:
    """The float type that holds every integer of `blocks` exactly: float64, or past 2^53
    (an int64 id, a 64-bit hash: float64 scored 1234567890123456789 as ...768) the platform's
    long double where its mantissa takes 64 bits (x86-64, arm64 Linux), else a 422."""
    wide = any(len(b) and np.abs(b.astype(np.float64)).max() >= EXACT_INTEGERS for b in blocks)
    return wide_float() if wide else np.float64


def wide_float() -> Any:
    """The platform's long double where its mantissa takes 64 bits (every int64 exactly), else
    a 422: an integer past 2^53 that float64 would round is not what predict scores."""
    if np.finfo(np.longdouble).nmant >= 63:
        return np.longdouble
    raise InvalidInput(
        f"an integer past 2^53 ({EXACT_INTEGERS:,}) cannot be explained exactly on this "
        "platform (its long double is float64), and a rounded one is not what predict scores"
    )


def as_type(rows: np.ndarray, kind: Any) -> np.ndarray:
    """`rows` as numpy type `kind`; floats for an integer input are rounded to the nearest whole
    number (a background's k-means centre of counts, 5.9, is 6; a cast truncates it to 5)."""
    if rows.dtype.kind == "f" and np.issubdtype(kind, np.integer):
        rows = np.rint(rows)
    if rows.dtype.kind in "fiu" and np.dtype(kind) == np.bool_:  # a share of 0.75 is true
        return np.asarray(rows >= 0.5)
    return rows.astype(kind, copy=False)


def by_column(manifest: ModelManifest) -> bool:
    """Whether `manifest`'s rows are columns, each input's values side by side (`InputColumns`
    over every input, strings counted by category): a model of several inputs (a DataFrame's
    skl2onnx export), or of one string or bool input of a fixed row shape (a TfidfVectorizer
    pipeline's text column, [N, 1]); else one numeric input's rows. A lone string input took
    the numeric path, whose drift baseline refused it ("reads string"), though explanations
    took it and `explain` sent its users to `aiaas baseline`. Read once per model (drift's
    live histograms ask at load, not per request)."""
    inputs = manifest.inputs
    if len(inputs) != 1:
        return len(inputs) > 1
    shape = inputs[0].shape
    return inputs[0].dtype in ("string", "bool") and len(shape) >= 1 and -1 not in shape[1:]


def input_columns(manifest: ModelManifest) -> InputColumns:
    """The columns of `manifest`'s rows; a 422 saying what is supported when it has none."""
    inputs, many = manifest.inputs, by_column(manifest)
    # A lone [-1] input (one number a row) is one column, as it is beside others: it was the
    # one shape refused, in a message listing [-1] as taken.
    lone = len(inputs) == 1 and len(inputs[0].shape) == 1
    problem = next((p for p in (_problem(s, many or lone) for s in inputs) if p), None)
    if problem or not inputs:
        shapes = {s.name: [s.dtype, list(s.shape)] for s in inputs}
        raise InvalidInput(
            f"explanations and drift baselines need {SUPPORTED}; {manifest.name}:"
            f"{manifest.version} has {shapes}{': ' + problem if problem else ''}"
        )
    widths = tuple(math.prod(spec.shape[1:]) for spec in inputs)
    if len(inputs) == 1 and manifest.features:
        return InputColumns(inputs, widths, tuple(manifest.features))
    names = (
        name
        for spec, width in zip(inputs, widths, strict=True)
        for name in indexed_names(spec.name, width)
    )
    return InputColumns(inputs, widths, tuple(names))


def _problem(spec: TensorSpec, many: bool) -> str:
    """Why `spec` is no column(s) of a row; "" when it is. Beside other inputs (`many`: rows
    by column), a [-1] one (an id a row, as torch models take an embedding's index) is one
    column, as [-1, 1] is; so is a lone string or bool input's."""
    if not spec.dtype.startswith(NUMERIC) and spec.dtype not in ("string", "bool"):
        return f"input '{spec.name}' is {spec.dtype}, not numbers"
    if len(spec.shape) < (1 if many else 2) or -1 in spec.shape[1:]:
        return f"input '{spec.name}' has no fixed row shape ({list(spec.shape)})"
    return ""


def indexed_names(name: str, width: int) -> tuple[str, ...]:
    """The columns of input `name`, `width` values a row, as batch CSVs read and write them and
    explanations name them: the input's own name for one value, else name_0 ... name_{width-1}
    (an export's `onnx::Gemm_0` reads onnx::Gemm_0_0, ...; explanations once said x_0, ...,
    which named no column of the user's CSV)."""
    return (name,) if width == 1 else tuple(f"{name}_{i}" for i in range(width))


# The manifest's `preprocessing` key for a table's columns reshaped into one input.
FLAT_COLUMNS = "flat_columns"


def flat_columns(manifest: ModelManifest) -> tuple[str, ...]:
    """The table columns, in order, one row of the model's one input was read from by `aiaas
    train` (row-major: a CSV of pixel0 ... pixel63 trained as [1, 8, 8]), where its manifest
    records them; else (). Such a model has no `features`: those name an [N, F] input's."""
    names = manifest.preprocessing.get(FLAT_COLUMNS)
    if len(manifest.inputs) != 1 or not isinstance(names, list) or manifest.features:
        return ()
    shape = manifest.inputs[0].shape[1:]
    if -1 in shape or math.prod(shape) != len(names) or len(set(names)) != len(names):
        return ()
    return tuple(names) if all(isinstance(n, str) and n for n in names) else ()
