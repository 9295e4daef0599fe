"""`aiaas baseline` and `aiaas monitor` of a model whose output is not one row per row sent.

- A scalar output: the baseline failed with "TypeError: len() of unsized object" and stored
  nothing (no background either, so explain kept asking for a baseline).
- A sum over the request [1, F]: the baseline binned ONE prediction for 200 training rows, and
  serving those same rows (10 requests of 20) showed the prediction as DRIFT (PSI 18).
Now the inputs are baselined and the predictions are not, the baseline saying why; the
monitor reports the inputs only, and no false alarm. Real parts: the CLI's publish, baseline
and monitor, the predict handler's route with its drift monitor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import nonrow_models
from tests.functions.test_predict_events import http_event


def _baselined(tmp_path: Path, build: str, capsys: pytest.CaptureFixture[str]) -> LocalStore:
    store = LocalStore(tmp_path / "store")
    model = getattr(nonrow_models, build)(tmp_path / f"{build}.onnx")
    assert main(["--store", store.uri, "publish", str(model), "--name", build]) == 0
    x = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
    pd.DataFrame(x, columns=[f"x_{i}" for i in range(4)]).to_csv(tmp_path / "x.csv", index=False)
    capsys.readouterr()
    args = ["--store", store.uri, "baseline", build, str(tmp_path / "x.csv"), "--clusters", "5"]
    assert main(args) == 0
    return store


@pytest.mark.parametrize(
    ("build", "output"), [("scalar", "m"), ("summed", "s"), ("boxes", "boxes")]
)
def test_the_inputs_are_baselined_and_the_predictions_not_saying_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], build: str, output: str
) -> None:
    store = _baselined(tmp_path, build, capsys)
    out = capsys.readouterr().out
    assert f"no prediction histogram: output '{output}' answers [" in out, out
    prefix = version_prefix(build, "1")
    assert store.get_bytes(f"{prefix}/{BACKGROUND_FILE}")
    baseline = DriftBaseline.from_json(store.get_bytes(f"{prefix}/{BASELINE_FILE}"))
    assert baseline.prediction is None and baseline.rows == 200
    assert baseline.features == tuple(f"x_{i}" for i in range(4))
    assert f"output '{output}'" in baseline.unwatched


@pytest.mark.parametrize("build", ["summed", "scalar"])
def test_serving_the_training_rows_raises_no_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], build: str
) -> None:
    store = _baselined(tmp_path, build, capsys)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service = service_from_env({"AIAAS_MODEL": build}, pool)
    x = pd.read_csv(tmp_path / "x.csv").to_numpy(np.float32)
    for first in range(0, 200, 20):
        body = orjson.dumps({"inputs": x[first : first + 20].tolist()})
        response = service.handle(http_event("POST", f"/models/{build}/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush()
    capsys.readouterr()
    assert main(["--store", store.uri, "monitor", build, "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "200 rows served" in out, out
    assert "(prediction)" not in out and "DRIFT" not in out, out
