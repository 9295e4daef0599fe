"""The scheduled drift job (issue #18): real store (directory and S3 on loopback), a real
EventBridge scheduled event, the EMF documents CloudWatch alarms read."""

from __future__ import annotations

import importlib
import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest

from functions.drift.job import DRIFTED, MAX_PSI, DriftSettings, run
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.model import LoadedModel
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory

SCHEDULED = json.loads((Path(__file__).parents[2] / "events" / "drift_schedule.json").read_text())


def serve_shifted(
    store: ObjectStore, tmp_path: Path, version: str, shift: float, served: int = 600
) -> None:
    """A published version, its baseline added (as `aiaas baseline` does), then `served` rows
    through a monitor. (The job reads a version's manifest to check its baseline against.)"""
    path = onnx_factory.linear_classifier(tmp_path / f"m{version}.onnx", features=3)
    manifest = onnx_factory.manifest_for(path, "credit", version, labels=("a", "b", "c"))
    model = LoadedModel(Registry(store).publish(manifest, path), path)
    rng = np.random.default_rng(0)
    train = rng.normal(size=(3000, 3)).astype(np.float32)
    classes = model.session.run(None, {"x": train})[0].argmax(1)
    base = drift_baseline.build(
        train, ("a", "b", "c"), drift_baseline.label_shares(classes, ("a", "b", "c"))
    )
    store.put_bytes(f"{version_prefix('credit', version)}/{BASELINE_FILE}", base.to_json().encode())
    live = rng.normal(size=(served, 3)).astype(np.float32)
    live[:, 1] += shift
    monitor = DriftMonitor(store)
    for start in range(0, served, 6):
        batch = {"x": live[start : start + 6]}
        monitor.record(model, batch, model.predict(batch))
    monitor.flush()


def test_each_monitored_version_is_one_emf_document(store: ObjectStore, tmp_path: Path) -> None:
    serve_shifted(store, tmp_path, "1", 0.0)
    serve_shifted(store, tmp_path, "2", 2.0)
    docs = {d["version"]: d for d in run(store, DriftSettings(window_seconds=600), time.time())}
    assert sorted(docs) == ["1", "2"]
    assert docs["1"][DRIFTED] == 0 and docs["1"][MAX_PSI] < 0.05 and docs["1"]["drifted"] == []
    assert docs["2"][DRIFTED] == 1 and docs["2"][MAX_PSI] > 1.0
    assert docs["2"]["drifted"][0] == "b"
    metrics = docs["2"]["_aws"]["CloudWatchMetrics"][0]
    assert metrics["Dimensions"] == [["model"], ["model", "version"]]
    assert {m["Name"] for m in metrics["Metrics"]} <= set(docs["2"])
    # Out of the window: nothing reported.
    assert run(store, DriftSettings(window_seconds=600), time.time() + 3600) == []


def test_the_handler_answers_a_scheduled_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:

    store = LocalStore(tmp_path / "store")
    serve_shifted(store, tmp_path, "1", 2.0)
    monkeypatch.setenv("AIAAS_STORE", str(tmp_path / "store"))
    monkeypatch.setenv("AIAAS_DRIFT_THRESHOLD", "0.3")
    sys.modules.pop("functions.drift.handler", None)
    handler = importlib.import_module("functions.drift.handler")
    out = io.StringIO()
    with redirect_stdout(out):
        answer = handler.handler(SCHEDULED, None)
    assert answer == {"versions": 1, "drifted": ["credit:1"]}
    (doc,) = [json.loads(line) for line in out.getvalue().splitlines()]
    assert doc["threshold"] == 0.3 and doc["window_seconds"] == 3600


def test_a_quiet_hour_of_unshifted_traffic_raises_no_alarm(
    store: ObjectStore, tmp_path: Path
) -> None:
    """30 rows from the training distribution: their PSI is sampling noise (an empty bin alone
    scores ~0.9), which used to be reported as aiaas_drift_max_psi and fire the alarm of every
    low-traffic model every hour. Under 20 rows a bin, drift is not judged: rows only."""
    serve_shifted(store, tmp_path, "1", 0.0, served=30)
    (doc,) = run(store, DriftSettings(window_seconds=600), time.time())
    assert doc["aiaas_drift_rows"] == 30 and doc["too_few_rows"] == {"rows": 30, "needed": 200}
    assert MAX_PSI not in doc and DRIFTED not in doc and doc["drifted"] == []
    metrics = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    assert [m["Name"] for m in metrics] == ["aiaas_drift_rows"]
    assert max(doc["psi"].values()) > 0.2  # still there to read: noise, not drift


def test_a_snapshot_or_baseline_that_does_not_read_leaves_out_itself_alone(
    store: ObjectStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One truncated snapshot (or baseline) stopped the whole hourly run with a bare
    JSONDecodeError naming no key: no model's drift went out, every alarm stayed OK."""
    from datetime import UTC, datetime

    from functions.runtime.drift.snapshots import snapshot_prefix

    serve_shifted(store, tmp_path, "1", 0.0)
    serve_shifted(store, tmp_path, "2", 2.0)
    serve_shifted(store, tmp_path, "3", 2.0)
    # Named as the monitor names it, ending within the window (one named outside is not read).
    ended = datetime.now(UTC)
    bad = f"{snapshot_prefix('credit', '2')}/{ended:%Y-%m-%d}/{ended:%H%M%S}-trunc.json"
    store.put_bytes(bad, b'{"counts": [[1')
    store.put_bytes(f"{version_prefix('credit', '3')}/{BASELINE_FILE}", b"{broken")
    docs = {d["version"]: d for d in run(store, DriftSettings(window_seconds=600), time.time())}
    assert sorted(docs) == ["1", "2"]  # 2 judged on its readable snapshots; 3 named, below
    assert docs["2"][DRIFTED] == 1
    said = caplog.text
    assert f"drift snapshot {bad} left out: it does not read" in said
    assert "drift of credit:3 not computed: its baseline" in said


def test_the_window_ends_at_the_hour_the_schedule_fired_for() -> None:
    """A run Lambda delays or retries read a window shifted by the delay (a gap, or snapshots
    counted twice across runs); an event from another day (the golden one) reads the last hour."""
    from datetime import UTC, datetime

    from functions.drift.job import window_end

    fired = datetime(2026, 12, 4, 11, 0, tzinfo=UTC).timestamp()
    event = {"time": "2026-12-04T11:00:00Z", "detail-type": "Scheduled Event"}
    assert window_end(event, fired + 95, 3600) == fired  # retried 95 s late: the same hour
    assert window_end(event, fired + 7200, 3600) == fired + 7200  # hours late: not that hour
    assert window_end(SCHEDULED, fired, 3600) == fired  # the golden event is from another day
    assert window_end({}, fired, 3600) == fired
    assert window_end({"time": "not a time"}, fired, 3600) == fired
