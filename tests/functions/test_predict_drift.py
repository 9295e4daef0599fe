"""The predict function keeps drift histograms of the rows it answers (issue #18): real events
through the service, counts flushed to the real store under monitoring/, read back as a window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson

from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.report import PREDICTION, compare, read_window, total
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import (
    MODEL,
    digits_service,
    http_event,
    publish_digits,
    reference_logits,
)

FEATURES = tuple(f"x_{i}" for i in range(64))


def _with_baseline(root: Path) -> tuple[LocalStore, np.ndarray]:
    _, onnx_path = publish_digits(root)
    store = LocalStore(root / "store")
    train = np.random.default_rng(0).integers(0, 17, (2000, 64)).astype(np.float32)
    classes = reference_logits(onnx_path, train).argmax(1)
    labels = tuple(str(i) for i in range(10))
    base = drift_baseline.build(train, FEATURES, drift_baseline.label_shares(classes, labels))
    store.put_bytes(f"{version_prefix(MODEL, '1')}/{BASELINE_FILE}", base.to_json().encode())
    return store, train


def test_answered_rows_are_counted_and_flushed_to_the_store(tmp_path: Path) -> None:
    store, _ = _with_baseline(tmp_path)
    service = digits_service(tmp_path)
    rows = np.random.default_rng(1).integers(0, 17, (30, 64)).tolist()
    for start in range(0, 30, 3):
        body = orjson.dumps({"inputs": rows[start : start + 3]})
        response = service.handle(http_event("POST", f"/models/{MODEL}/predict", body))
        assert response["statusCode"] == 200, response["body"]
    infer = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 64], "data": rows[:2]}]}
    path = f"/v2/models/{MODEL}/infer"
    assert service.handle(http_event("POST", path, json.dumps(infer)))["statusCode"] == 200
    bad = orjson.dumps({"inputs": [[1.0] * 63]})  # refused: never counted
    assert service.handle(http_event("POST", f"/models/{MODEL}/predict", bad))["statusCode"] == 422
    assert not list(store.list_keys("monitoring/"))  # held until the interval passes
    assert service.plane.drift is not None
    service.plane.drift.flush()
    keys = list(store.list_keys(f"monitoring/{MODEL}/1/"))
    assert len(keys) == 1
    docs = read_window(store, MODEL, "1", 0, 4e9)
    base = drift_baseline.DriftBaseline.from_json(
        store.get_bytes(f"{version_prefix(MODEL, '1')}/{BASELINE_FILE}")
    )
    window = total(base, docs)
    assert window.rows == 32 and window.counts.sum(1).tolist() == [32] * 64
    assert window.prediction is not None and window.prediction.sum() == 32
    assert compare(base, window)[-1].name == PREDICTION


def test_a_version_without_a_baseline_is_served_and_not_monitored(tmp_path: Path) -> None:
    publish_digits(tmp_path)
    service = digits_service(tmp_path)
    body = orjson.dumps({"inputs": [[0.0] * 64]})
    assert service.handle(http_event("POST", f"/models/{MODEL}/predict", body))["statusCode"] == 200
    assert service.plane.drift is not None
    service.plane.drift.flush()
    assert not list(LocalStore(tmp_path / "store").list_keys("monitoring/"))


def test_drift_can_be_turned_off(tmp_path: Path) -> None:
    _with_baseline(tmp_path)
    assert digits_service(tmp_path, AIAAS_DRIFT_FLUSH_SECONDS="0").plane.drift is None
