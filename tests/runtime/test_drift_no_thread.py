"""Side work that cannot start, and a baseline read that fails unexpectedly, leave drift and
capture working afterwards (hunt_monitor 2, 3): a real ONNX model, baseline and directory store.

- A flush's thread that could not be started (`can't start new thread`: a process at its
  thread or memory limit) kept the one-flush-in-flight lock: no later flush ran, and that
  process never wrote a drift snapshot again; a capture buffer held its lines the same way,
  until 8 MiB of them were dropped.
- A baseline read that failed with anything but the store's own errors set the version's
  histograms to None for good: its rows were never counted again until a restart.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.held import held_bytes
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import read_window
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory

LABELS = ("a", "b", "c")
WALL = 1.8e9  # the wall clock at the monitor clock's 0


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    path = onnx_factory.linear_classifier(tmp_path_factory.mktemp("m") / "m.onnx", features=4)
    return LoadedModel(onnx_factory.manifest_for(path, "credit", "1", labels=LABELS), path)


class _FlakyReads(LocalStore):
    """The directory store, whose next `failures` reads fail with an error no store raises."""

    failures = 0

    def get_bytes(self, key: str) -> bytes:
        if self.failures:
            self.failures -= 1
            raise MemoryError("the read's buffer")
        return super().get_bytes(key)


@pytest.fixture
def store(model: LoadedModel, tmp_path: Path) -> _FlakyReads:
    store = _FlakyReads(tmp_path / "store")
    rows = _rows(2000)
    classes = model.session.run(None, {"x": rows})[0].argmax(1)
    base = drift_baseline.build(
        rows, ("a", "b", "c", "d"), drift_baseline.label_shares(classes, LABELS)
    )
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    return store


def _rows(n: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 1, (n, 4)).astype(np.float32)


@pytest.fixture
def no_thread_once(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`Thread.start` fails once for each side thread's first start (as at a thread limit)."""
    failed: list[str] = []
    start = threading.Thread.start

    def refused(thread: threading.Thread) -> None:
        side = thread.name.startswith(("aiaas-drift-flush", "aiaas-capture-write"))
        if side and thread.name not in failed:
            failed.append(thread.name)
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)
    return failed


def _served(store: LocalStore) -> int:
    return sum(int(d["rows"]) for d in read_window(store, "credit", "1", 0, WALL + 1e6))  # type: ignore[call-overload]


def test_a_flush_whose_thread_did_not_start_is_run_by_the_next_due_request(
    model: LoadedModel, store: _FlakyReads, no_thread_once: list[str]
) -> None:
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: WALL + now[0])
    batch = {"x": _rows(5)}
    answer = model.predict(batch)
    monitor.record(model, batch, answer)
    now[0] = 61.0
    monitor.record(model, batch, answer)  # due: its flush's thread is refused
    assert no_thread_once == ["aiaas-drift-flush"] and _served(store) == 0
    now[0] = 122.0
    monitor.record(model, batch, answer)  # due again: written (it was skipped for good)
    assert not monitor._flushing.locked()
    assert _served(store) == 10  # none lost: the refused flush's rows are in this one
    monitor.flush()  # (in Lambda a due flush writes the rows before its request's own)
    assert _served(store) == 15


def test_captured_lines_whose_write_did_not_start_are_written_next(
    tmp_path: Path, no_thread_once: list[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    now = [100.0]
    buffer = CaptureBuffer(store, clock=lambda: now[0], wall=lambda: WALL + now[0])
    group = ("credit", "1", "2027-01-15")
    buffer.add(group, b'{"n":0}\n')  # alone: due at once, its write's thread refused
    assert no_thread_once == ["aiaas-capture-write"] and buffer.held > 0
    now[0] += 1.5
    buffer.add(group, b'{"n":1}\n')  # due: written with the first (was held for good)
    assert buffer.counts.written == 2 and buffer.held == 0
    lines = b"".join(store.get_bytes(k) for k in store.list_keys("capture")).splitlines()
    assert sorted(lines) == [b'{"n":0}', b'{"n":1}']


def test_a_baseline_read_failing_unexpectedly_is_tried_again_an_interval_later(
    model: LoadedModel, store: _FlakyReads
) -> None:
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: WALL + now[0])
    batch = {"x": _rows(5)}
    answer = model.predict(batch)
    store.failures = 1
    monitor.record(model, batch, answer)  # the read fails: this request is not counted
    assert monitor.idle(model)  # ... nor those of the interval (one read a minute)
    now[0] = 61.0
    monitor.record(model, batch, answer)  # read again: counted from here
    now[0] = 62.0
    monitor.record(model, batch, answer)
    monitor.flush()
    assert _served(store) == 10  # was 0 for good: the version's monitoring turned off


def test_a_baseline_read_whose_thread_did_not_start_holds_no_request(
    model: LoadedModel, store: _FlakyReads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The requests answered during a baseline read are held until it ends: a read whose thread
    could not start never ended, and every request of the version was held an interval."""
    start = threading.Thread.start

    def refused(thread: threading.Thread) -> None:
        if thread.name.startswith("aiaas-drift-baseline"):
            raise RuntimeError("can't start new thread")
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", refused)
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: 0.0, wall=lambda: WALL)
    batch = {"x": _rows(5)}
    monitor.record(model, batch, model.predict(batch))
    monitor.record(model, batch, model.predict(batch))
    assert monitor._meanwhile == {} and monitor._room == {}


def test_a_text_request_is_held_by_its_characters_not_its_cells() -> None:
    """An object array's nbytes is 8 a cell: four 1 MB texts read as 32 bytes, so the 16 MiB
    cap on the requests held during a baseline read held a text model's without bound."""
    texts = np.array(["x" * 1_000_000] * 4, dtype=object)
    assert held_bytes({"text": texts}, {"scores": np.zeros((4, 3), np.float32)}) >= 4_000_000
