"""Drift against the training baseline (issue #18): a real ONNX model, real store, the issue's
acceptance: held-out data flags nothing, a 2-sd shift flags that feature only, and PSI / JS
equal an independent computation."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from functions.runtime import aside
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift import live as live_module
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import PREDICTION, compare, read_window, total
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory

FEATURES = 8
NAMES = tuple(f"f{i}" for i in range(FEATURES))
LABELS = ("a", "b", "c")


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Mixed shapes: normal, skewed, uniform, and a discrete feature with 4 values."""
    columns = [
        rng.normal(5, 2, n),
        rng.exponential(1.0, n),
        rng.uniform(-1, 1, n),
        rng.integers(0, 4, n).astype(np.float64),
        rng.normal(0, 1, n),
        rng.lognormal(0, 0.5, n),
        rng.normal(-3, 0.1, n),
        rng.gamma(2.0, 2.0, n),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


@pytest.fixture
def model(tmp_path: Path) -> LoadedModel:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=FEATURES)
    return LoadedModel(onnx_factory.manifest_for(path, "credit", "1", labels=LABELS), path)


@pytest.fixture
def training(model: LoadedModel) -> tuple[np.ndarray, DriftBaseline]:
    rows = _rows(np.random.default_rng(1), 5000)
    classes = model.session.run(None, {"x": rows})[0].argmax(1)
    prediction = drift_baseline.label_shares(classes, LABELS)
    return rows, drift_baseline.build(rows, NAMES, prediction)


def _serve(
    model: LoadedModel, base: DriftBaseline, rows: np.ndarray, tmp_path: Path
) -> tuple[LocalStore, list[dict[str, object]]]:
    """Serve `rows` in requests of 1-20 rows through a monitor on a real store; read them back."""
    store = LocalStore(tmp_path / "store")
    key = f"{version_prefix('credit', '1')}/{BASELINE_FILE}"
    store.put_bytes(key, base.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    start = 0
    while start < len(rows):
        batch = {"x": rows[start : start + 1 + start % 20]}
        monitor.record(model, batch, model.predict(batch))
        start += len(batch["x"])
        now[0] += 0.5  # a flush every 120 requests
    monitor.flush()
    return store, read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])


def test_held_out_training_data_flags_no_feature(model, training, tmp_path) -> None:
    _, base = training
    held_out = _rows(np.random.default_rng(2), 3000)
    _, docs = _serve(model, base, held_out, tmp_path)
    assert len(docs) > 1  # several flushes, summed by the window
    window = total(base, docs)
    assert window.rows == 3000
    report = compare(base, window)
    assert [r.name for r in report] == [*NAMES, PREDICTION]
    assert not [r.name for r in report if r.drifted], report
    assert max(r.psi for r in report) < 0.05
    assert window.nan.sum() == 0


def test_a_two_sd_shift_flags_that_feature_only(model, training, tmp_path) -> None:
    rows, base = training
    held_out = _rows(np.random.default_rng(3), 3000)
    held_out[:, 4] += 2 * rows[:, 4].std()
    _, docs = _serve(model, base, held_out, tmp_path)
    report = compare(base, total(base, docs))
    flagged = [r.name for r in report if r.drifted and r.name != PREDICTION]
    assert flagged == ["f4"]
    assert report[4].psi > 1.0 and report[4].js > 0.5
    assert report[4].out_of_range > 0  # above the training maximum too


def test_psi_and_js_equal_an_independent_computation(model, training, tmp_path) -> None:
    rows, base = training
    live = _rows(np.random.default_rng(4), 2000)
    live[:, 1] *= 1.5
    _, docs = _serve(model, base, live, tmp_path)
    report = compare(base, total(base, docs))
    for i in range(FEATURES):
        # Bins from the training quantiles, assigned with searchsorted (not the broadcast
        # comparison the monitor uses), counts with np.histogram-free bincount.
        inner = np.unique(np.quantile(rows[:, i].astype(np.float64), np.linspace(0, 1, 11)[1:-1]))
        inner = inner[inner > rows[:, i].min()]
        expected = np.bincount(
            np.searchsorted(inner, rows[:, i].astype(np.float64), side="right"),
            minlength=len(inner) + 1,
        )
        actual = np.bincount(
            np.searchsorted(inner, live[:, i].astype(np.float64), side="right"),
            minlength=len(inner) + 1,
        )
        e, a = expected / expected.sum(), actual / actual.sum()
        e_floor, a_floor = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
        psi = np.sum((a_floor - e_floor) * np.log(a_floor / e_floor))
        assert report[i].psi == pytest.approx(psi, abs=1e-9)
        assert report[i].js == pytest.approx(jensenshannon(a, e, base=2), abs=1e-9)
    assert 0.1 < report[1].psi < 0.2  # a 1.5x wider skewed feature: "moderate"


def test_the_baseline_survives_json(training) -> None:
    _, base = training
    again = DriftBaseline.from_json(base.to_json())
    assert again.features == base.features
    assert np.array_equal(again.counts, base.counts)
    assert np.array_equal(again.edges, base.edges, equal_nan=True)
    assert again.prediction is not None and again.prediction.labels == LABELS
    assert base.counts[3].sum() == 5000 and (base.counts[3] > 0).sum() == 4  # discrete: 4 bins


def test_values_outside_training_and_nan_are_counted(model, training, tmp_path) -> None:
    _, base = training
    path = onnx_factory.linear_classifier(tmp_path / "n.onnx", features=FEATURES)
    loose = LoadedModel(
        onnx_factory.manifest_for(path, "credit", "1", labels=LABELS, finite=False), path
    )
    rows = _rows(np.random.default_rng(5), 10)
    rows[0, 0] = np.nan
    rows[1, 2] = 1e9
    _, docs = _serve(loose, base, rows, tmp_path)
    window = total(base, docs)
    assert window.nan.tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert window.above[2] == 1 and window.counts[0].sum() == 9


def test_unmonitored_versions_cost_a_flag_and_a_window_starts_with_its_histograms(
    model, training, tmp_path
) -> None:
    """Versions without a baseline: no flush, and their baseline asked for once an interval
    (a clock read a request). The first version with one reports a window from its first
    request, not from the monitor's creation."""
    _, base = training
    store = LocalStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '2')}/{BASELINE_FILE}", base.to_json().encode())
    now, reads = [0.0], []

    def clock() -> float:
        reads.append(now[0])
        return now[0]

    monitor = DriftMonitor(store, interval=60.0, clock=clock, wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(2), 3)}
    reads.clear()
    for _ in range(3):  # version 1 has no baseline
        monitor.record(model, rows, model.predict(rows))
        now[0] += 100.0
    assert not list(store.list_keys("monitoring"))
    path = onnx_factory.linear_classifier(tmp_path / "v2.onnx", features=FEATURES)
    v2 = LoadedModel(onnx_factory.manifest_for(path, "credit", "2", labels=LABELS), path)
    monitor.record(v2, rows, v2.predict(rows))  # at 300 s: its window starts here
    now[0] += 61.0
    monitor.record(model, rows, model.predict(rows))  # any version's request flushes now
    (doc,) = read_window(store, "credit", "2", 1.8e9, 1.8e9 + now[0])
    # Dated when its rows were served, not when it was written (that dated them at the next
    # request, however long after: `aiaas monitor --window` counted them in the wrong window).
    assert (doc["start"], doc["end"]) == (1.8e9 + 300.0, 1.8e9 + 300.0)
    assert total(base, [doc]).counts[0].sum() == 3


def test_a_long_lived_server_writes_held_rows_an_interval_on_dated_when_served(
    model, training, tmp_path
) -> None:
    """`aiaas serve` (`timer`): a burst, then no request at all. Its rows were held until the
    next request, however late, and dated then; now a thread writes them an interval after
    the first of them, dated by the rows' own times."""
    _, base = training
    store = LocalStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    monitor = DriftMonitor(store, interval=0.3, timer=True)
    rows = {"x": _rows(np.random.default_rng(7), 4)}
    served = time.time()
    for _ in range(3):
        monitor.record(model, rows, model.predict(rows))
    deadline = time.monotonic() + 10
    while not (docs := read_window(store, "credit", "1", 0, 4e9)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [doc["rows"] for doc in docs] == [12]
    assert served - 0.05 < docs[0]["start"] <= docs[0]["end"] < served + 0.2  # not the write's


def test_a_baseline_added_while_the_version_is_served_is_read_an_interval_later(
    model, training, tmp_path
) -> None:
    """`aiaas baseline` on a model published from elsewhere, as the docs order it (publish,
    serve, baseline, monitor): the version's first request found no baseline and was never
    asked again, so a running `aiaas serve` counted none of its rows until restarted."""
    _, base = training
    store = LocalStore(tmp_path / "store")
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(3), 4)}
    monitor.record(model, rows, model.predict(rows))  # no baseline yet
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now[0] += 30.0
    monitor.record(model, rows, model.predict(rows))  # within the interval: not asked again
    now[0] += 31.0
    monitor.record(model, rows, model.predict(rows))  # asked again: monitored from here
    now[0] += 61.0
    monitor.record(model, rows, model.predict(rows))  # flushes the window, then is counted
    monitor.flush()
    docs = read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])
    assert [d["end"] for d in docs] == [1.8e9 + 61.0, 1.8e9 + 122.0]
    assert total(base, docs).counts[0].sum() == 8


def test_idle_says_when_a_request_has_nothing_to_count_or_flush(model, training, tmp_path) -> None:
    """The request path skips `watched` and `record` while `idle` (a model without a
    baseline, the usual case): never for a version not asked yet, nor once its interval is
    up (a baseline added meanwhile is read), nor while any version here is monitored."""
    _, base = training
    store = LocalStore(tmp_path / "store")
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(5), 2)}
    assert not monitor.idle(model)  # never asked: the request reads its baseline
    monitor.record(model, rows, model.predict(rows))  # none found
    assert monitor.idle(model)
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now[0] += 61.0
    assert not monitor.idle(model)  # asked again: this request reads the new baseline
    monitor.record(model, rows, model.predict(rows))
    assert not monitor.idle(model)  # monitored: every request counts
    path = onnx_factory.linear_classifier(tmp_path / "v2.onnx", features=FEATURES)
    v2 = LoadedModel(onnx_factory.manifest_for(path, "credit", "2", labels=LABELS), path)
    monitor.record(v2, rows, v2.predict(rows))  # no baseline, but its requests still flush
    assert not monitor.idle(v2)


class _HungStore(LocalStore):
    """S3 behind a network that drops packets: a read waits for its timeout (30 s, 5 tries)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.answer = threading.Event()

    def get_bytes(self, key: str) -> bytes:
        self.answer.wait(30)
        return super().get_bytes(key)


def test_a_hung_store_holds_a_versions_first_request_briefly_not_for_its_timeouts(
    model, training, tmp_path, monkeypatch
) -> None:
    """The baseline was read on the version's first request, which waited the S3 client's
    timeouts (a black-holed store at the edge: minutes); again every interval. The read now
    runs aside: the request waits at most a moment, and its rows, and those answered while the
    read hangs, are held and counted once it is read (they were not counted at all)."""
    _, base = training
    monkeypatch.setattr(aside, "WAIT_S", 0.1)
    store = _HungStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(4), 5)}
    started = time.monotonic()
    monitor.record(model, rows, model.predict(rows))  # the read hangs: held
    monitor.record(model, rows, model.predict(rows))  # held too, no second read started
    assert time.monotonic() - started < 1.0
    store.answer.set()
    deadline = time.monotonic() + 10
    while ("credit", "1") not in monitor._live and time.monotonic() < deadline:
        store.answer.wait(0.01)
    monitor.record(model, rows, model.predict(rows))  # counted
    now[0] += 61.0
    monitor.record(model, rows, model.predict(rows))  # flushes the window, then is counted
    monitor.flush()
    docs = read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])
    assert total(base, docs).counts[0].sum() == 20


def test_a_baseline_read_hung_past_the_interval_starts_no_second_read_and_loses_no_row(
    model, training, tmp_path, monkeypatch
) -> None:
    """A request an interval after a read that still hangs (a store's timeouts and retries
    outlast it) started a second read: it emptied the list of requests the first held, and
    its histograms then replaced the first's with their counts (seen as a lost request in
    test_hung_store_writes.py under load, where the read outlasted the fake clock's interval)."""
    _, base = training
    monkeypatch.setattr(aside, "WAIT_S", 0.1)
    store = _HungStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    reads = []
    hung_get = store.get_bytes

    def get_bytes(key: str) -> bytes:
        reads.extend([key] if key.endswith(BASELINE_FILE) else [])
        return hung_get(key)

    monkeypatch.setattr(store, "get_bytes", get_bytes)
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(4), 5)}
    monitor.record(model, rows, model.predict(rows))  # the read hangs: held
    now[0] += 61.0
    monitor.record(model, rows, model.predict(rows))  # the read hangs on: held too
    assert len(reads) == 1
    store.answer.set()
    deadline = time.monotonic() + 10  # the read ends once it has counted the requests held
    while any(t.name == "aiaas-drift-baseline" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the baseline read did not end"
        time.sleep(0.01)
    monitor.flush()
    docs = read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])
    assert (len(reads), total(base, docs).counts[0].sum()) == (1, 10)


def test_an_error_in_one_requests_recording_drops_its_counts_only(
    model: LoadedModel,
    training: tuple[np.ndarray, DriftBaseline],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request the histograms fail on, as it is held (inputs not arrays) or as it is binned
    (scores of no class): before, the monitor set the version's
    histograms to None for the process's life, losing the counts held, and `idle` then
    skipped every later request. Now that request is dropped alone, said once."""
    _, base = training
    store = LocalStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": _rows(np.random.default_rng(6), 3)}
    answer = model.predict(rows)
    live_module._SAID.discard("credit:1")  # said once a process: this test's own line
    monitor.record(model, rows, answer)  # held before the errors
    for _ in range(2):
        monitor.record(model, {"x": rows["x"].tolist()}, answer)
        monitor.record(model, rows, {"logits": np.zeros((3, 0), np.float32)})
    assert not monitor.idle(model)
    monitor.record(model, rows, answer)  # counted after them
    now[0] += 61.0
    monitor.record(model, rows, answer)  # flushes the window, then is counted
    (doc,) = read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])
    assert doc["rows"] == 6 and np.asarray(doc["prediction"]).sum() == 6, doc
    said = [r for r in caplog.records if "drift counts of a request of credit:1" in r.message]
    assert len(said) == 1 and said[0].levelname == "ERROR"
