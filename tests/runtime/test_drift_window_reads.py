"""The drift job reads the snapshots of its window, not the whole day's.

A snapshot's name carries the second it ended (`<day>/<HHMMSS>-<id>.json`), and the hourly job
read every snapshot of the day to keep the last hour's: at a flush a minute, 1,440 GETs for 61
snapshots by the end of a day, for each monitored version. Snapshots are written here by the
real monitor on a real store, one each 10 minutes of its wall clock over six hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.drift.report import read_window
from functions.runtime.drift.snapshots import snapshot_prefix
from functions.runtime.model import LoadedModel
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests import onnx_factory

MIDNIGHT = 1_800_057_600.0  # 2027-01-16 00:00:00 UTC
STEP_S = 600.0


class CountingStore(LocalStore):
    """A directory store that counts the objects it is asked to read."""

    reads = 0

    def get_bytes(self, key: str) -> bytes:
        self.reads += 1
        return super().get_bytes(key)


def _snapshots(tmp_path: Path) -> tuple[CountingStore, int]:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=4)
    model = LoadedModel(
        onnx_factory.manifest_for(path, "credit", "1", labels=("a", "b", "c")), path
    )
    store = CountingStore(tmp_path / "store")
    training = np.random.default_rng(1).normal(size=(500, 4)).astype(np.float32)
    base = drift_baseline.build(training, ("f0", "f1", "f2", "f3"), None)
    store.put_bytes(f"{version_prefix('credit', '1')}/{BASELINE_FILE}", base.to_json().encode())
    now = [MIDNIGHT]
    monitor = DriftMonitor(store, interval=STEP_S, clock=lambda: now[0], wall=lambda: now[0])
    rows = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    written = 0
    for _ in range(36):
        now[0] += STEP_S
        monitor.record(model, {"x": rows}, model.predict({"x": rows}))
        monitor.flush()
        written += 1
    return store, written


def test_the_last_hour_reads_its_own_snapshots_only(tmp_path: Path) -> None:
    store, written = _snapshots(tmp_path)
    keys = list(store.list_keys(f"{snapshot_prefix('credit', '1')}/2027-01-16"))
    assert len(keys) == written == 36
    until = MIDNIGHT + 36 * STEP_S
    store.reads = 0
    docs = read_window(store, "credit", "1", until - 3600, until)
    ends = sorted(float(d["end"]) for d in docs)  # type: ignore[arg-type]
    # The snapshots ending within the hour: 7 (one at each edge included) ...
    assert ends == [until - 3600 + i * STEP_S for i in range(7)]
    # ... and those only were read, of the 36 of the day.
    assert store.reads == 7


def test_a_window_edge_inside_a_second_keeps_that_seconds_snapshot(tmp_path: Path) -> None:
    store, _ = _snapshots(tmp_path)
    end = MIDNIGHT + 6 * STEP_S  # a snapshot ended exactly here: its name says 010000
    (doc,) = read_window(store, "credit", "1", end - 0.5, end + 0.5)
    assert doc["end"] == end
    assert read_window(store, "credit", "1", end + 0.5, end + 1.5) == []


def test_a_snapshot_named_otherwise_is_still_read(tmp_path: Path) -> None:
    store, _ = _snapshots(tmp_path)
    prefix = f"{snapshot_prefix('credit', '1')}/2027-01-16"
    first = next(iter(store.list_keys(prefix)))
    store.put_bytes(f"{prefix}/renamed-by-hand.json", store.get_bytes(first))
    until = MIDNIGHT + 36 * STEP_S
    docs = read_window(store, "credit", "1", MIDNIGHT, until)
    assert len(docs) == 37  # the copy's name says nothing: read, and kept by its `end`


class ListingStore(LocalStore):
    """A directory store that counts its listings (a request each on S3)."""

    listings = 0

    def list_keys(self, prefix: str) -> Iterator[str]:
        self.listings += 1
        return super().list_keys(prefix)

    def list_dirs(self, prefix: str) -> list[str]:
        self.listings += 1
        return super().list_dirs(prefix)


def test_a_ten_year_window_lists_the_days_that_hold_snapshots(tmp_path: Path) -> None:
    # `aiaas monitor --window 3650d` listed each of 3,651 day prefixes for two days of data.
    store, written = _snapshots(tmp_path)
    prefix = snapshot_prefix("credit", "1")
    first = next(store.list_keys(prefix))
    doc = orjson.loads(store.get_bytes(first))
    doc["end"] = MIDNIGHT - 400 * 86400 + 12 * 3600  # noon of a day 400 days earlier
    store.put_bytes(f"{prefix}/2025-12-12/120000-old.json", orjson.dumps(doc))
    counted = ListingStore(store.root)
    docs = read_window(counted, "credit", "1", MIDNIGHT - 3650 * 86400, MIDNIGHT + 86400)
    assert len(docs) == written + 1
    assert counted.listings == 3  # the day folders once, then each of the two days held
    # A week's window lists its days as it did (no folder listing first).
    counted.listings = 0
    assert (
        len(read_window(counted, "credit", "1", MIDNIGHT - 6 * 86400, MIDNIGHT + 86400)) == written
    )
    assert counted.listings == 8
