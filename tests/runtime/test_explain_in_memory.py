"""Explaining a model held in memory (no writable cache, or AIAAS_MODEL_LOAD=memory): the
explainer's own session on every CPU cannot reopen a file there is none of."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.runtime.cache import ModelInMemory
from functions.runtime.explain import explainer as explainer_module
from functions.runtime.explain.background import Background
from functions.runtime.explain.explainer import Explainer
from functions.runtime.model import LoadedModel
from tests.onnx_factory import linear_classifier, manifest_for


@pytest.mark.parametrize("load", ["disk", "memory"])
def test_a_model_held_in_memory_is_explained_as_one_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: str
) -> None:
    path = linear_classifier(tmp_path / "model.onnx", features=4, classes=3)
    manifest = manifest_for(path, "iris", "1", labels=("a", "b", "c"))
    # A small model on a machine of several CPUs: the explainer opens a wider session.
    monkeypatch.setattr(explainer_module, "cpu_count", lambda: 4)
    source = path if load == "disk" else ModelInMemory(model=path.read_bytes())
    model = LoadedModel(manifest, source)
    rng = np.random.default_rng(0)
    background = Background(rng.normal(size=(5, 4)), np.full(5, 0.2), "test")
    explained = Explainer(model, background, max_seconds=10).explain(
        {"x": np.ones((1, 4), dtype=np.float32)}, samples=None
    )
    (row,) = explained.rows
    assert row.values.shape == (4, 3) and row.exact
    np.testing.assert_allclose(row.values.sum(axis=0), row.prediction - row.base, atol=1e-6)
