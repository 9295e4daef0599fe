"""A long-running server's drift counts hold only the versions still answering.

Found soaking `aiaas serve` with a version published every minute: each version that ever
answered kept its histograms (and its baseline) in every worker until the server stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory


def _with_baselines(
    store: LocalStore, tmp_path: Path, versions: list[str]
) -> tuple[dict[str, LoadedModel], np.ndarray]:
    """Versions of model `m` (one ONNX file), each with a baseline in `store`; the training rows."""
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=3)
    train = np.random.default_rng(0).normal(size=(300, 3))
    base = drift_baseline.build(train, ("a", "b", "c")).to_json().encode()
    models = {}
    for v in versions:
        store.put_bytes(f"{version_prefix('m', v)}/{BASELINE_FILE}", base)
        manifest = onnx_factory.manifest_for(path, "m", v, labels=("x", "y", "z"))
        models[v] = LoadedModel(manifest, path)
    return models, train


def test_a_version_idle_for_a_whole_interval_is_forgotten_and_counted_again_later(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    versions = [str(v) for v in range(1, 13)]
    models, train = _with_baselines(store, tmp_path, versions)
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


class _FlushedMeanwhile(LocalStore):
    """A store whose first snapshot write lets another request come due: a second request
    thread of `aiaas serve` (a pool of handler threads shares one monitor) reaching the end
    of the interval while this one's PUT is in flight."""

    meanwhile: Callable[[], None] | None = None

    def put_bytes(self, key: str, data: bytes, **kwargs: Any) -> None:
        other, self.meanwhile = self.meanwhile, None
        if other is not None and key.startswith("monitoring/"):
            other()
        super().put_bytes(key, data, **kwargs)


def test_two_flushes_at_once_leave_every_version_monitored(tmp_path: Path) -> None:
    """The second flush forgot the versions the first had just written (idle again), under
    the first's loop over them: "dictionary changed size during iteration", caught as a drift
    error, which turned drift off for the version of the request that flushed, for the
    server's life. One flush is in flight at a time now: the second request skips its own,
    and what it counted is written by the next."""
    store = _FlushedMeanwhile(tmp_path / "store")
    models, train = _with_baselines(store, tmp_path, ["1", "2"])
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0])
    batch = {"x": train[:4].astype(np.float32)}
    for v in ("1", "2"):
        monitor.record(models[v], batch, models[v].predict(batch))
    now[0] += 60.0

    def second_request() -> None:
        now[0] += 60.0  # due for this request too
        monitor.record(models["1"], batch, models["1"].predict(batch))

    store.meanwhile = second_request
    monitor.record(models["2"], batch, models["2"].predict(batch))  # flushes
    assert monitor._live.get(("m", "1")) is not None  # still monitored, not turned off
    assert monitor._live.get(("m", "2")) is not None
    assert len(list(store.list_keys("monitoring/m/1"))) == 1
    monitor.flush()  # the second request's rows: written next
    assert len(list(store.list_keys("monitoring/m/1"))) == 2
