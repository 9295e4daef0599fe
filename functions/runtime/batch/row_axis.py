"""Batch scoring's one assumption about a model's axes, checked: each input's first axis holds
its rows, and each output answers a row for each row sent."""

from __future__ import annotations

import numpy as np

from functions.runtime.errors import BadRequest


class UnsupportedModel(BadRequest):
    """The model's inputs cannot be read from this batch format."""


def row_per_row(
    outputs: dict[str, np.ndarray], sent: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """`outputs`, checked to hold a row for each row `sent`: a model whose rows are not on its
    inputs' first axis (a time-major RNN takes [steps, batch, features]) would otherwise have
    its answers spread over rows they do not belong to, or fail deep in numpy."""
    rows = len(next(iter(sent.values())))
    for name, value in outputs.items():
        if value.ndim == 0 or value.shape[0] != rows:
            shapes = ", ".join(f"'{n}' {list(v.shape)}" for n, v in sent.items())
            raise UnsupportedModel(
                f"output '{name}' answers {list(value.shape)} for {rows} row(s) sent ({shapes}): "
                "batch scoring reads each input's first axis as its rows and writes an answer a "
                "row, and this model's outputs are not a row for each: either its rows are on "
                "another axis (a time-major RNN takes [steps, batch, features]: export it with "
                "its batch axis first, PyTorch's batch_first=True), or it answers the request "
                "as a whole (detections of any count, a sum over the rows): send whole tensors "
                "to the predict API"
            )
    return outputs
