"""Building each recipe's network for a prepared data set.

Every model is exported whole: input standardization (from the training split) is inside the
graph, classifiers return logits [N, classes], regressors a prediction [N] in target units.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from training.prepare import PreparedData
from training.recipes import CATALOG
from training.recipes.layers import (
    RecurrentEncoder,
    ScalarOutput,
    Standardize,
    TextEncoder,
)
from training.spec import JobSpec

Params = dict[str, Any]


class Model(nn.Module):
    """standardize -> body -> head [-> back to target units]."""

    def __init__(self, prefix: nn.Module, body: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.prefix, self.body, self.head = prefix, body, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.body(self.prefix(x)))
        return out


def build_model(spec: JobSpec, data: PreparedData) -> Model:
    """The untrained network `spec.recipe` describes, sized for `data`."""
    torch.manual_seed(spec.seed)
    info = CATALOG[spec.recipe.name]
    outputs = len(data.labels) if data.labels else 1
    params = spec.recipe.params
    if info.kind == "text":
        assert data.vocabulary is not None
        prefix: nn.Module = nn.Identity()
        body, width = _text(params, len(data.vocabulary.tokens))
    else:
        prefix = _standardize(data.train.x, info.kind)
        body, width = BODIES[spec.recipe.name](params, data.row_shape)
    head: nn.Module = nn.Linear(width, outputs)
    if not data.labels:
        y = data.train.y.astype(np.float64)
        head = nn.Sequential(head, ScalarOutput(float(y.mean()), float(y.std())))
    return Model(prefix, body, head)


def _standardize(x: np.ndarray, kind: str) -> Standardize:
    # Statistics per feature (tabular, sequence) or per channel (image), broadcast over the rest.
    axes = {"tabular": (0,), "sequence": (0, 1), "image": (0, 2, 3)}[kind]
    mean = torch.from_numpy(x.mean(axis=axes, keepdims=True, dtype=np.float64)[0])
    std = torch.from_numpy(x.std(axis=axes, keepdims=True, dtype=np.float64)[0])
    return Standardize(mean, std)


def _linear(params: Params, row: tuple[int, ...]) -> tuple[nn.Module, int]:
    return nn.Identity(), row[0]


def _mlp(params: Params, row: tuple[int, ...]) -> tuple[nn.Module, int]:
    layers: list[nn.Module] = []
    width = row[0]
    for hidden in params["hidden"]:
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        if params["dropout"]:
            layers.append(nn.Dropout(params["dropout"]))
        width = hidden
    return nn.Sequential(*layers), width


def _cnn(params: Params, row: tuple[int, ...]) -> tuple[nn.Module, int]:
    channels, height, width = row
    kernel = params["kernel_size"]
    layers: list[nn.Module] = []
    for out in params["channels"]:
        layers += [nn.Conv2d(channels, out, kernel, padding=kernel // 2), nn.ReLU()]
        channels = out
    if min(height, width) >= 4:
        layers.append(nn.MaxPool2d(2))
    layers.append(nn.Flatten())
    features = nn.Sequential(*layers)
    with torch.no_grad():
        flat = features(torch.zeros(1, *row)).shape[1]
    tail: list[nn.Module] = [nn.Linear(flat, params["hidden"]), nn.ReLU()]
    if params["dropout"]:
        tail.append(nn.Dropout(params["dropout"]))
    return nn.Sequential(features, *tail), params["hidden"]


def _recurrent(cell: str) -> Callable[[Params, tuple[int, ...]], tuple[nn.Module, int]]:
    def build(params: Params, row: tuple[int, ...]) -> tuple[nn.Module, int]:
        size = params["hidden_size"]
        return RecurrentEncoder(cell, row[-1], size, params["layers"]), size

    return build


def _text(params: Params, vocab: int) -> tuple[nn.Module, int]:
    width = params["d_model"]
    encoder = TextEncoder(
        vocab, width, params["heads"], params["layers"], params["ff_size"], params["dropout"],
        params["max_length"],
    )  # fmt: skip
    return encoder, width


BODIES: dict[str, Callable[[Params, tuple[int, ...]], tuple[nn.Module, int]]] = {
    "linear": _linear,
    "logistic": _linear,
    "mlp": _mlp,
    "cnn": _cnn,
    "gru": _recurrent("gru"),
    "lstm": _recurrent("lstm"),
}
