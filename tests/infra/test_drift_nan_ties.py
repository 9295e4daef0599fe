"""A row of NaN class scores must not hide another row's tie from the drift fold, end to end:
a skl2onnx LogisticRegression published with `--allow-nonfinite` (its intercept 1e-9, so a row
of zeros scores float32 [0.5, 0.5] and its own label is `pos`), `aiaas baseline`, OIP infer
requests asking only for the label (the scores, NaN for a row with a null, are run for drift
and not answered), then `aiaas monitor --json` and the drift job.

Before, the fold's tie pre-check counted the best-score matches of all its rows together: the
NaN row matched nowhere, cancelling the tied row's second match, so the tie was never settled
and the tied rows were counted `neg` (the first best), a class predict never answered them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import orjson
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from functions.drift.job import DriftSettings, run
from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import http_event
from tests.infra.test_cli_explain import cli

EPS = 1e-4  # the floor of a share in PSI (docs/monitoring.md)


def test_a_nan_row_does_not_hide_a_tied_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 2)).astype(np.float32)
    classes = np.where(train.sum(axis=1) > 0, "pos", "neg")
    model = LogisticRegression().fit(train, classes)
    model.intercept_[:] = 1e-9  # a row of zeros: decision 1e-9, float32 [0.5, 0.5], `pos`
    onnx = to_onnx(model, train[:1], options={id(model): {"zipmap": False}})
    (tmp_path / "odd.onnx").write_bytes(onnx.SerializeToString())
    store = LocalStore(tmp_path / "store")
    named = ["--name", "odd", "--features", "a,b", "--allow-nonfinite"]
    assert cli(store, capsys, "publish", str(tmp_path / "odd.onnx"), *named)[0] == 0
    (tmp_path / "train.csv").write_text(
        "a,b\n" + "".join(f"{a:.9g},{b:.9g}\n" for a, b in train.tolist())
    )
    code, _, err = cli(store, capsys, "baseline", "odd", str(tmp_path / "train.csv"))
    assert code == 0, err
    trained = model.predict(train)

    # Each request: a row with a null (NaN scores), a row of zeros (tied), a plain row.
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "odd"}, pool)
    rows = [None, 1.0, 0.0, 0.0, 1.0, 1.0]
    request = {"inputs": [{"name": "X", "shape": [3, 2], "datatype": "FP32", "data": rows}]}
    body = orjson.dumps({**request, "outputs": [{"name": "label"}]})
    answered: list[str] = []
    for _ in range(100):
        answer = service.handle(http_event("POST", "/v2/models/odd/infer", body))
        assert answer["statusCode"] == 200, answer
        answered += json.loads(answer["body"])["outputs"][0]["data"]
    assert answered[1::3] == ["pos"] * 100  # the tied row, as its own label output names it
    assert service.plane.drift is not None
    service.plane.drift.flush()
    capsys.readouterr()  # the function's request logs

    code, out, err = cli(store, capsys, "monitor", "odd", "--window", "10m", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == 300, doc
    shares = {s["label"]: s["served"] for s in doc["label_shares"]}
    assert shares == pytest.approx({k: answered.count(k) / 300 for k in ("neg", "pos")})

    # The prediction PSI, numpy only: served labels as answered against training's.
    def counted(labels: list[str] | np.ndarray) -> np.ndarray:
        return np.array([list(labels).count(k) for k in ("neg", "pos")]) / len(labels)

    a, e = np.maximum(counted(answered), EPS), np.maximum(counted(trained), EPS)
    expected = float(np.sum((a - e) * np.log(a / e)))
    (prediction,) = [f for f in doc["features"] if f["name"] == "(prediction)"]
    assert prediction["psi"] == pytest.approx(expected, abs=1e-9), prediction
    (job,) = run(store, DriftSettings(window_seconds=600), time.time())
    assert job["psi"]["(prediction)"] == pytest.approx(expected, abs=1e-6), job  # type: ignore[index]
