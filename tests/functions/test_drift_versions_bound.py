"""A long-running server's drift counts hold only the versions still answering.

Found soaking `aiaas serve` with a version published every minute: each version that ever
answered kept its histograms (and its baseline) in every worker until the server stopped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory


def test_a_version_idle_for_a_whole_interval_is_forgotten_and_counted_again_later(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=3)
    train = np.random.default_rng(0).normal(size=(300, 3))
    base = drift_baseline.build(train, ("a", "b", "c")).to_json().encode()
    versions = [str(v) for v in range(1, 13)]
    models = {}
    for v in versions:
        store.put_bytes(f"{version_prefix('m', v)}/{BASELINE_FILE}", base)
        manifest = onnx_factory.manifest_for(path, "m", v, labels=("x", "y", "z"))
        models[v] = LoadedModel(manifest, path)
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0])
    batch = {"x": train[:4].astype(np.float32)}
    for v in versions:  # one version published and served a minute, the older ones idle
        monitor.record(models[v], batch, models[v].predict(batch))
        now[0] += 60.0
    monitor.record(models["12"], batch, models["12"].predict(batch))  # flushes
    assert len(monitor._live) <= 2  # was 12: every version that ever answered
    monitor.record(models["1"], batch, models["1"].predict(batch))  # back: counted again
    now[0] += 60.0
    monitor.flush()
    written = list(store.list_keys("monitoring/m/1"))
    assert len(written) == 2  # its first interval's counts, and the ones after its return
