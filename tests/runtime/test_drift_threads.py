"""Drift state shared by `aiaas serve`'s request threads and the monitor's threads: every
answered row is in exactly one snapshot, and a version's baseline is read once however many
requests arrive at its start (a real ONNX model, baseline and store)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import read_window
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory

LABELS = ("a", "b", "c")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    path = onnx_factory.linear_classifier(tmp_path_factory.mktemp("m") / "m.onnx", features=4)
    return LoadedModel(onnx_factory.manifest_for(path, "credit", "1", labels=LABELS), path)


@pytest.fixture(scope="module")
def baseline(model: LoadedModel) -> DriftBaseline:
    classes = model.session.run(None, {"x": _rows(2000)})[0].argmax(1)
    prediction = drift_baseline.label_shares(classes, LABELS)
    return drift_baseline.build(_rows(2000), ("a", "b", "c", "d"), prediction)


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (n, 4)).astype(np.float32)


def test_rows_recorded_while_snapshots_are_taken_are_counted_once(
    model: LoadedModel, baseline: DriftBaseline, switching: None
) -> None:
    live = LiveHistograms(baseline, model.manifest)
    batch = {"x": _rows(3)}
    answer = model.predict(batch)
    threads, each = 4, 4000
    docs: list[dict[str, object]] = []
    done = threading.Event()

    def serve() -> None:
        for _ in range(each):
            live.record(batch, answer)

    def flush() -> None:  # the monitor's flush thread, as often as it can
        while not done.is_set():
            doc = live.snapshot()
            if doc is not None:
                docs.append(doc)

    flusher = threading.Thread(target=flush)
    servers = [threading.Thread(target=serve) for _ in range(threads)]
    for thread in (flusher, *servers):
        thread.start()
    for thread in servers:
        thread.join()
    done.set()
    flusher.join()
    last = live.snapshot()
    docs += [last] if last is not None else []
    served = threads * each * len(batch["x"])
    assert sum(int(doc["rows"]) for doc in docs) == served  # type: ignore[call-overload]
    for doc in docs:  # each snapshot's bins and predictions add up to its rows
        counts = np.asarray(doc["counts"])
        assert (counts.sum(1) == doc["rows"]).all()
        assert np.asarray(doc["prediction"]).sum() == doc["rows"]


class _CountedReads(LocalStore):
    """The directory store, counting its reads."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0

    def get_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().get_bytes(key)


def test_requests_arriving_together_at_a_versions_start_read_its_baseline_once(
    model: LoadedModel, baseline: DriftBaseline, tmp_path: Path, switching: None
) -> None:
    """Two reads: the second's histograms replaced the first's, losing what it had counted."""
    store = _CountedReads(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", baseline.to_json().encode())
    batch = {"x": _rows(2)}
    answer = model.predict(batch)
    reads = []
    for _ in range(100):  # fresh monitors: a version's start, 100 times
        store.reads = 0
        monitor = DriftMonitor(store, interval=60.0)
        together = threading.Barrier(6)

        def serve(monitor: DriftMonitor = monitor, together: threading.Barrier = together) -> None:
            together.wait()
            for _ in range(10):
                monitor.record(model, batch, answer)

        threads = [threading.Thread(target=serve) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reads.append(store.reads)
    assert set(reads) == {1}


class _ForgottenWhileLooked(dict):  # type: ignore[type-arg]
    """`_live` as a flush on another thread changes it: the version's baseline read finishes
    (so `_start` finds it there) and a flush forgets it as idle before `_start` reads it."""

    looks = 0

    def __contains__(self, key: object) -> bool:
        self.looks += 1
        return self.looks == 2 or super().__contains__(key)  # `_start`'s look: there, then gone


def test_a_version_forgotten_by_a_flush_as_a_request_looks_is_monitored_again(
    model: LoadedModel, baseline: DriftBaseline, tmp_path: Path
) -> None:
    """The request read `_live[key]` after the flush popped it: KeyError, caught as a drift
    error, which turned the version's monitoring off for the process's life."""
    store = LocalStore(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", baseline.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0])
    batch = {"x": _rows(2)}
    answer = model.predict(batch)
    monitor._live = _ForgottenWhileLooked()
    monitor.record(model, batch, answer)  # this request's rows: not counted
    monitor._live = dict(monitor._live)
    assert monitor._live.get(("credit", "1"), "absent") == "absent"  # not turned off (None)
    monitor.record(model, batch, answer)  # the next request reads the baseline again
    assert monitor._live.get(("credit", "1")) is not None


class _SlowReads(LocalStore):
    """The directory store, each read taking `delay` s (S3 at a distance, a loaded host)."""

    delay = 0.3

    def get_bytes(self, key: str) -> bytes:
        time.sleep(self.delay)
        return super().get_bytes(key)


def test_requests_answered_while_the_baseline_is_read_are_counted(
    model: LoadedModel, baseline: DriftBaseline, tmp_path: Path
) -> None:
    """`aiaas serve`'s other threads answered requests while a version's first request read
    its baseline: none of them was counted (hunt_monitor 4: 230 of 1000 rows at a server's
    start, 10 clients)."""
    store = _SlowReads(tmp_path / "store")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", baseline.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    batch = {"x": _rows(2)}
    answer = model.predict(batch)
    together = threading.Barrier(6)

    def serve() -> None:
        together.wait()
        for _ in range(10):
            if not monitor.idle(model):  # as the data plane asks (dataplane/model.py)
                monitor.record(model, batch, answer)

    threads = [threading.Thread(target=serve) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monitor.flush()
    docs = read_window(store, "credit", "1", 0, 1.8e9 + 1e6)
    assert sum(int(doc["rows"]) for doc in docs) == 6 * 10 * 2  # type: ignore[call-overload]
