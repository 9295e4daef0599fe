"""A hung store (S3 behind a network that drops packets: each write waits the S3 client's
timeouts, 30 s x 5) under the writes a request makes on the side: the drift monitor's flush
and the capture buffer's lines. Both wrote on the request's thread, so the request that came
due held its caller for minutes. Now the request waits at most `aside.WAIT_S`, one write is in
flight at a time, nothing written meanwhile is lost, and a stopping server's flush waits for
the write in flight and then writes what came after it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from functions.runtime import aside
from functions.runtime.capture.buffer import CaptureBuffer
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import read_window, total
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory

WAIT_S = 0.05


class _HungWrites(LocalStore):
    """Writes under `prefix` wait until `answer` is set; `writes` counts those that began."""

    def __init__(self, root: Path, prefix: str) -> None:
        super().__init__(root)
        self.prefix, self.answer, self.writes = prefix, threading.Event(), 0

    def put_bytes(
        self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None
    ) -> None:
        if key.startswith(self.prefix):
            self.writes += 1
            self.answer.wait(30)
        super().put_bytes(key, data, if_absent=if_absent, if_match=if_match)


@pytest.fixture(autouse=True)
def _short_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aside, "WAIT_S", WAIT_S)


def _timed(call: object, *args: object) -> float:
    started = time.monotonic()
    call(*args)  # type: ignore[operator]
    return time.monotonic() - started


def test_a_drift_flush_on_a_hung_store_holds_its_request_briefly(tmp_path: Path) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=4)
    labels = ("a", "b", "c")
    model = LoadedModel(onnx_factory.manifest_for(path, "credit", "1", labels=labels), path)
    rng = np.random.default_rng(5)
    training = rng.normal(size=(500, 4)).astype(np.float32)
    classes = model.session.run(None, {"x": training})[0].argmax(1)
    shares = drift_baseline.label_shares(classes, labels)
    base = drift_baseline.build(training, ("f0", "f1", "f2", "f3"), shares)
    store = _HungWrites(tmp_path / "store", "monitoring/")
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now = [0.0]
    monitor = DriftMonitor(store, interval=60.0, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    rows = {"x": training[:5]}
    monitor.record(model, rows, model.predict(rows))
    # Its baseline read (aside: ~20 ms, the first in a process; over WAIT_S under load) ends
    # before the clock moves on: read later, it reset the window (the next request was not
    # due) and the write below never began.
    deadline = time.monotonic() + 10
    while any(thread.name == "aiaas-drift-baseline" for thread in threading.enumerate()):
        assert time.monotonic() < deadline, "the baseline read did not end"
        time.sleep(0.01)
    now[0] += 61.0
    # Due: the write hangs; the request goes on after WAIT_S.
    assert _timed(monitor.record, model, rows, model.predict(rows)) < 1.0
    now[0] += 61.0
    # Due again while the first write hangs: no second write; its rows are held.
    assert _timed(monitor.record, model, rows, model.predict(rows)) < 0.5
    assert store.writes == 1
    stopping = threading.Thread(target=monitor.flush)  # `aiaas serve` stopping
    stopping.start()
    stopping.join(WAIT_S * 4)
    assert stopping.is_alive()  # waits for the write in flight...
    store.answer.set()
    stopping.join(10)
    # ... then writes what came after it: every row counted once.
    docs = read_window(store, "credit", "1", 1.8e9, 1.8e9 + now[0])
    assert len(docs) == 2 and total(base, docs).counts[0].sum() == 15


def test_captured_lines_on_a_hung_store_hold_no_request_and_none_is_lost(
    tmp_path: Path,
) -> None:
    store = _HungWrites(tmp_path / "store", "capture/")
    now = [100.0]
    buffer = CaptureBuffer(store, clock=lambda: now[0], wall=lambda: 1.8e9 + now[0])
    group = ("churn", "1", "2027-01-15")
    assert _timed(buffer.add, group, b'{"n":0}\n') < 1.0  # alone: written at once, hangs
    for n in range(1, 6):  # each a second later: due, but one write is in flight
        now[0] += 1.5
        assert _timed(buffer.add, group, b'{"n":%d}\n' % n) < 0.5
    assert _timed(buffer.tick) < 0.5
    assert store.writes == 1 and buffer.held == 5 * len(b'{"n":1}\n')
    store.answer.set()
    buffer.flush()  # waits for the write in flight, then writes the 5 held
    assert buffer.counts.written == 6 and buffer.counts.dropped == 0
    lines = b"".join(store.get_bytes(k) for k in store.list_keys("capture")).splitlines()
    assert sorted(lines) == [b'{"n":%d}' % n for n in range(6)]


def test_aiaas_serve_holds_no_request_for_a_capture_write_lambda_does(tmp_path: Path) -> None:
    """A long-lived server answers other requests while the write goes on (it writes what is
    left at exit); in Lambda the request waits (up to `aside.WAIT_S`), as the container may be
    frozen once the handler returns."""
    assert aside.host_wait_s({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}) is None
    assert aside.host_wait_s({}) == 0.0
    store = _HungWrites(tmp_path / "store", "capture/")
    buffer = CaptureBuffer(store, wait_s=aside.host_wait_s({}))
    assert _timed(buffer.add, ("churn", "1", "2027-01-15"), b'{"n":0}\n') < WAIT_S / 2
    store.answer.set()
    buffer.flush()  # the write in flight ends, as at a stop
    assert buffer.counts.written == 1
