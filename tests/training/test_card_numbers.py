"""The numbers `aiaas train` says of a model are the ones it has, in words as well as images.

A class of 8 rows in 20,000 was "0.0% of the rows" (as if it had none); the loss plot of a
model trained with class_weight said "cross-entropy", whose values are not the weighted loss it
plots; and the feature importance was a PNG only, its numbers nowhere in the card's text.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch", reason="training needs torch: pip install 'aiaas[training]'")

from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.training.test_class_weight import spec
from training import card
from training.data_checks import class_warnings
from training.job import run_job


def test_a_class_under_a_tenth_of_a_percent_is_said_so_with_its_count(tmp_path: Path) -> None:
    y = np.zeros(20_000, dtype=np.int64)
    y[::2500] = 1  # 8 rows of 20,000: 0.04%
    said = class_warnings(("ok", "fraud"), y, "kind", spec(tmp_path))
    assert len(said) == 1
    assert said[0].startswith(
        "target 'kind' is imbalanced: class 'fraud' is <0.1% of the rows (8 of 20000)"
    )


def test_a_weighted_model_card_names_its_loss_and_lists_its_importances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named: list[str] = []
    real = card.loss_plot

    def loss_plot(*args: Any) -> Path:
        named.append(args[-1])  # what the plot's axes are labelled
        return real(*args)

    monkeypatch.setattr(card, "loss_plot", loss_plot)
    job = spec(tmp_path, class_weight="balanced", epochs=2)
    registry = Registry(LocalStore(tmp_path / "store"))
    result = run_job(job, registry, tmp_path / "run", publish_model=True, progress=False)
    assert named == ["weighted cross-entropy"]
    text = (tmp_path / "run" / "card" / "card.md").read_text()
    section = text.split("## Feature importance\n", 1)[1].split("## Plots", 1)[0]
    assert "over " in section and "test rows, all 2 features" in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| feature | importance |"
    assert {row.split(" | ")[0][2:] for row in rows[1:]} == {"amount", "hour"}
    values = [float(row.split(" | ")[1].rstrip(" |")) for row in rows[1:]]
    assert values == sorted(values, reverse=True) and values[0] > 0
    assert result.manifest.training.get("class_weight") == "balanced"
