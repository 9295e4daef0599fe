"""The live drift counts shared by `aiaas serve`'s request threads and the monitor's flush
thread: every answered row is in exactly one snapshot (a real ONNX model and baseline)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.model import LoadedModel
from tests import onnx_factory

LABELS = ("a", "b", "c")


@pytest.fixture
def switching() -> Iterator[None]:
    """Threads switched as often as the interpreter can: a race shows within a few thousand
    calls rather than once a day."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_rows_recorded_while_snapshots_are_taken_are_counted_once(
    tmp_path: Path, switching: None
) -> None:
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=4)
    model = LoadedModel(onnx_factory.manifest_for(path, "credit", "1", labels=LABELS), path)
    train = np.random.default_rng(0).normal(0, 1, (2000, 4)).astype(np.float32)
    classes = model.session.run(None, {"x": train})[0].argmax(1)
    prediction = drift_baseline.label_shares(classes, LABELS)
    live = LiveHistograms(
        drift_baseline.build(train, ("a", "b", "c", "d"), prediction), model.manifest
    )
    batch = {"x": train[:3]}
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
