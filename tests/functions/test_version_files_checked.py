"""A version's background and drift baseline, listed in its manifest with their sha256 (as
`aiaas train` publishes them), are checked against it wherever they are read, as the model
file is: replaced in the store after publishing (a training job's role may write any version's
files but its manifest: docs/deploy.md), explain, live drift counting, the drift job and `aiaas
monitor` refuse them, never use them. Real parts: a directory store and S3 (moto server)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.drift.job import DriftSettings, run
from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift import baseline as drift_baseline
from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.drift.baseline_read import read_live
from functions.runtime.drift.monitor import DriftMonitor
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import ObjectStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

LABELS = ("a", "b", "c")
ROW = [0.5, -1.0, 2.0]


def documents(seed: int, model: LoadedModel) -> dict[str, bytes]:
    """A background and a drift baseline of rows drawn from `seed` (each valid for the model)."""
    rows = np.random.default_rng(seed).normal(seed, 1, size=(400, 3)).astype(np.float32)
    classes = model.session.run(None, {"x": rows})[0].argmax(1)
    base = drift_baseline.build(rows, LABELS, drift_baseline.label_shares(classes, LABELS))
    return {
        BACKGROUND_FILE: summarize(rows.astype(np.float64)).to_json().encode(),
        BASELINE_FILE: base.to_json().encode(),
    }


def publish(store: ObjectStore, tmp_path: Path) -> tuple[ModelManifest, Path]:
    """m:1 with both files listed in its manifest, as a training job publishes them."""
    path = onnx_factory.linear_classifier(tmp_path / "m.onnx", features=3)
    manifest = onnx_factory.manifest_for(path, "m", "1", labels=LABELS)
    files = {}
    for name, data in documents(0, LoadedModel(manifest, path)).items():
        files[name] = tmp_path / name
        files[name].write_bytes(data)
    stored = Registry(store).publish(manifest, path, files)
    assert {f.path for f in stored.files} >= {BACKGROUND_FILE, BASELINE_FILE}
    return stored, path


@pytest.fixture(params=["other rows", "same size"])
def how(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def replace_file(
    store: ObjectStore, manifest: ModelManifest, name: str, path: Path, how: str
) -> None:
    """Another valid file of that name written over the published one (what the role allows):
    one of other rows, or the same bytes but one digit (its size as listed, its sha256 not)."""
    key = f"{version_prefix('m', '1')}/{name}"
    if how == "other rows":
        store.put_bytes(key, documents(3, LoadedModel(manifest, path))[name])
        return
    data = bytearray(store.get_bytes(key))
    at = next(i for i in range(len(data) // 2, len(data)) if chr(data[i]).isdigit())
    data[at] = ord("1") if data[at] != ord("1") else ord("2")
    store.put_bytes(key, bytes(data))


def service(store: ObjectStore, tmp_path: Path) -> PredictService:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": "m"}, pool)


def post(svc: PredictService, path: str, doc: Any) -> tuple[int, Any]:
    response = svc.handle(http_event("POST", path, json.dumps(doc)))
    return response["statusCode"], body_of(response)


def test_a_replaced_background_is_refused_by_explain(
    store: ObjectStore, tmp_path: Path, how: str
) -> None:
    manifest, path = publish(store, tmp_path)
    status, _ = post(service(store, tmp_path / "a"), "/models/m/explain", {"instances": [ROW]})
    assert status == 200  # as published: explained
    replace_file(store, manifest, BACKGROUND_FILE, path, how)
    svc = service(store, tmp_path / "b")
    status, body = post(svc, "/models/m/explain", {"instances": [ROW]})
    assert (status, body) == (
        503,
        {"error": "model m:1's background.json failed its integrity check and is not used"},
    )
    status, body = post(svc, "/v2/models/m/explain", {"inputs": [
        {"name": "x", "shape": [1, 3], "datatype": "FP32", "data": ROW}]})  # fmt: skip
    assert status == 503 and "failed its integrity check" in body["error"]
    status, body = post(svc, "/models/m/predict", {"instances": [ROW]})
    assert status == 200 and len(body["predictions"]) == 1  # the model itself is as published


def serve_rows(store: ObjectStore, model: LoadedModel) -> DriftMonitor:
    monitor = DriftMonitor(store)
    live = np.random.default_rng(1).normal(2.0, 1, size=(300, 3)).astype(np.float32)
    for start in range(0, len(live), 6):
        batch = {"x": live[start : start + 6]}
        monitor.record(model, batch, model.predict(batch))
    monitor.flush()
    return monitor


def test_a_replaced_drift_baseline_is_never_counted_or_judged(
    store: ObjectStore, tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    manifest, path = publish(store, tmp_path)
    model = LoadedModel(manifest, path)
    assert read_live(store, model) is not None  # as published: monitored
    serve_rows(store, model)
    assert [d["version"] for d in run(store, DriftSettings(window_seconds=600), time.time())] == [
        "1"
    ]
    code, out = monitor_cli(store)
    assert code == 0, out

    replace_file(store, manifest, BASELINE_FILE, path, how)
    with caplog.at_level(logging.ERROR, logger="aiaas.drift"):
        assert read_live(store, model) is None  # the live histograms: not counted
        assert run(store, DriftSettings(window_seconds=600), time.time()) == []  # nor judged
    said = [r.getMessage() for r in caplog.records]
    assert any(
        s.startswith("drift not monitored: m:1: ") and "drift_baseline.json" in s for s in said
    )
    assert any(
        s.startswith("drift of m:1 not computed") and "refusing to use it" in s for s in said
    )
    code, out = monitor_cli(store)
    assert code != 0 and "drift_baseline.json" in out and "manifest" in out


def monitor_cli(store: ObjectStore) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "monitor", "m:1", "--window", "1h", "--no-png"])
    return code, out.getvalue() + err.getvalue()
