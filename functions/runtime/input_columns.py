"""A numeric model's rows as flat feature rows [N, F] and back: what explanations vary and drift
baselines bin.

A model with one numeric input has rows of that input's values (an image's flattened). A model
with several (skl2onnx gives a pandas DataFrame one [N, 1] input per column by default) has rows
of all its inputs' values side by side, in the model's input order; a column is named after its
input, or its input and index for an [N, k] one. Explanations and drift then see one feature per
column whatever the export, and a flat row goes back to the model as its feeds, so one batch is
still one onnxruntime call.
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

NUMERIC = ("float", "int", "uint")
SUPPORTED = (
    "one numeric input of fixed row shape ([-1, F], or an image's [-1, C, H, W]), or one "
    "numeric input per column ([-1, 1] or [-1, k] each, as skl2onnx exports a DataFrame)"
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
    def dtype(self) -> Any:
        """The numpy type flat rows are kept in: the inputs' own when they share one."""
        kinds = {BY_NAME[spec.dtype].numpy for spec in self.specs}
        return kinds.pop() if len(kinds) == 1 else np.float64

    def feeds(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for flat `rows` [N, F], each in its own shape and type."""
        if len(self.specs) == 1:
            spec = self.specs[0]
            shaped = rows.reshape(len(rows), *spec.shape[1:])
            return {spec.name: shaped.astype(BY_NAME[spec.dtype].numpy, copy=False)}
        feeds, start = {}, 0
        for spec, width in zip(self.specs, self.widths, strict=True):
            block = rows[:, start : start + width].reshape(len(rows), *spec.shape[1:])
            feeds[spec.name] = np.ascontiguousarray(block, dtype=BY_NAME[spec.dtype].numpy)
            start += width
        return feeds

    def flat(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Flat rows [N, F] (float64) of the model's inputs, side by side."""
        blocks = [np.asarray(inputs[spec.name]) for spec in self.specs]
        rows = len(blocks[0])
        return np.hstack([b.reshape(rows, -1).astype(np.float64) for b in blocks])

    def columns(self, rows: np.ndarray) -> dict[str, Any]:
        """Flat `rows` as a JSON `inputs` value predict takes: a batch for one input, else
        {input name: its rows} (a flat list for an [N, 1] one)."""
        if len(self.specs) == 1:
            return {"inputs": rows.reshape(len(rows), *self.specs[0].shape[1:]).tolist()}
        feeds = self.feeds(rows.astype(np.float64))
        return {"inputs": {name: value.tolist() for name, value in feeds.items()}}


def input_columns(manifest: ModelManifest) -> InputColumns:
    """The columns of `manifest`'s rows; a 422 saying what is supported when it has none."""
    inputs = manifest.inputs
    problem = next((p for p in map(_problem, inputs) if p), None)
    if problem or not inputs:
        shapes = {s.name: [s.dtype, list(s.shape)] for s in inputs}
        raise InvalidInput(
            f"explanations and drift baselines need {SUPPORTED}; {manifest.name}:"
            f"{manifest.version} has {shapes}{': ' + problem if problem else ''}"
        )
    widths = tuple(math.prod(spec.shape[1:]) for spec in inputs)
    if len(inputs) == 1:
        names = manifest.features or tuple(f"x_{i}" for i in range(widths[0]))
    else:
        names = tuple(
            name
            for spec, width in zip(inputs, widths, strict=True)
            for name in ((spec.name,) if width == 1 else _indexed(spec.name, width))
        )
    return InputColumns(inputs, widths, tuple(names))


def _problem(spec: TensorSpec) -> str:
    if spec.dtype == "string":
        return (
            f"input '{spec.name}' is a string: explaining it means masking it, and a background "
            "summary (k-means centres) has no value for a string column, which would need real "
            "background rows; drop it from the export or encode it as numbers before it"
        )
    if not spec.dtype.startswith(NUMERIC):
        return f"input '{spec.name}' is {spec.dtype}, not numbers"
    if len(spec.shape) < 2 or -1 in spec.shape[1:]:
        return f"input '{spec.name}' has no fixed row shape ({list(spec.shape)})"
    return ""


def _indexed(name: str, width: int) -> tuple[str, ...]:
    return tuple(f"{name}_{i}" for i in range(width))
