"""A baseline whose string columns the model does not have (written by hand, or for another
export) is not monitored, and the request is answered: drift never fails a request."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.categories import category_baseline
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory


def test_categories_a_model_lacks_leave_it_unmonitored_not_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=3)
    model = LoadedModel(
        onnx_factory.manifest_for(path, "credit", "1", labels=("a", "b", "c")), path
    )
    train = np.random.default_rng(0).normal(size=(300, 3))
    base = drift_baseline.build(train, ("a", "b", "c"))
    plan = category_baseline("plan", np.array(["basic", "pro"] * 150))
    base = dataclasses.replace(base, categories=(plan,))
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    monitor = DriftMonitor(store, interval=0.0)
    batch = {"x": train[:4].astype(np.float32)}
    monitor.record(model, batch, model.predict(batch))  # raised KeyError: a failed request
    monitor.record(model, batch, model.predict(batch))
    assert "credit:1: drift not monitored" in caplog.text
    assert list(store.list_keys("monitoring")) == []
