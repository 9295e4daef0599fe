"""The recipe catalog: which model families exist, what data they take, their hyperparameters.

Torch-free on purpose, so a spec can be validated (and `aiaas train --check` run) without
importing torch; `training.recipes.build.build_model` constructs the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

BOTH = ("classification", "regression")


@dataclass(frozen=True)
class RecipeInfo:
    """One model family: its input kind (tabular, image, sequence, text) and default params."""

    name: str
    kind: str
    tasks: tuple[str, ...]
    summary: str
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _info(
    name: str, kind: str, tasks: tuple[str, ...], summary: str, **defaults: Any
) -> RecipeInfo:
    return RecipeInfo(name, kind, tasks, summary, MappingProxyType(defaults))


CATALOG: Mapping[str, RecipeInfo] = MappingProxyType(
    {
        info.name: info
        for info in (
            _info(
                "linear", "tabular", ("regression",), "linear regression on standardized features"
            ),
            _info("logistic", "tabular", ("classification",), "multinomial logistic regression"),
            _info("mlp", "tabular", BOTH, "multi-layer perceptron", hidden=[256, 256], dropout=0.0),
            _info(
                "cnn",
                "image",
                BOTH,
                "small convolutional network for [C, H, W] images",
                channels=[16, 32],
                kernel_size=3,
                hidden=64,
                dropout=0.0,
            ),
            _info("gru", "sequence", BOTH, "GRU over [T, F] sequences", hidden_size=32, layers=1),
            _info("lstm", "sequence", BOTH, "LSTM over [T, F] sequences", hidden_size=32, layers=1),
            _info(
                "transformer",
                "text",
                ("classification",),
                "small Transformer encoder over token ids",
                d_model=64,
                heads=4,
                layers=2,
                ff_size=128,
                dropout=0.1,
                max_length=32,
                min_count=1,
            ),
        )
    }
)
