"""Explaining a model with an int64 input (skl2onnx's default export of integer features).

`aiaas baseline` keeps k-means centres of the training rows, fractional (2.575 counts). A
feature left out takes the background row's value, and onnxruntime's int64 input got it by a
cast, which truncates: 5.9 counts were scored as 5, so the base value was the model's answer for
rows no centre stands for (each centre's every count rounded down). Now the nearest whole number.
Real parts: skl2onnx's export, the CLI's publish and baseline, the predict handler's explain route
with an API Gateway v2.0 event.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event


def test_base_value_takes_whole_counts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 10, (300, 4)).astype(np.int64)
    model = LinearRegression().fit(x, x @ np.array([1.5, -2.0, 0.5, 3.0]))
    (tmp_path / "counts.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert (
        main(["--store", store.uri, "publish", str(tmp_path / "counts.onnx"), "--name", "c"]) == 0
    )
    pd.DataFrame(x, columns=[f"X_{i}" for i in range(4)]).to_csv(tmp_path / "x.csv", index=False)
    assert main(["--store", store.uri, "baseline", "c", str(tmp_path / "x.csv")]) == 0
    background = json.loads(store.get_bytes(f"{version_prefix('c', '1')}/{BACKGROUND_FILE}"))
    centres, weights = np.array(background["rows"]), np.array(background["weights"])
    assert not np.array_equal(centres, np.rint(centres))  # fractional: what this is about
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": "c"}, pool)
    event = http_event("POST", "/models/c/explain", json.dumps({"inputs": [[9, 1, 4, 7]]}))
    response = service.handle(event)
    assert response["statusCode"] == 200, response["body"]
    explained = body_of(response)["explanations"][0]
    expected = np.average(model.predict(np.rint(centres)), weights=weights)
    truncated = np.average(model.predict(np.trunc(centres)), weights=weights)
    assert abs(expected - truncated) > 0.1
    np.testing.assert_allclose(explained["base_value"], [expected], rtol=1e-5)
    np.testing.assert_allclose(explained["prediction"], model.predict([[9, 1, 4, 7]]), rtol=1e-5)
