"""scikit-learn's MultiOutputRegressor (one GradientBoostingRegressor a target) exported by
skl2onnx: one TreeEnsembleRegressor a target, concatenated into `variable` [N, 2].

`aiaas publish` took it as task other, with a note that `--labels a,b` would make predict
answer labels for its "2 class scores", where a 2-target LinearRegression (one LinearRegressor)
published as task regression. It is now a regressor too, and `--labels` for it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.datasets import make_regression
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.multioutput import MultiOutputRegressor

from functions.predict.service import service_from_env
from functions.runtime.store import LocalStore
from tests.batch_support import pool
from tests.cli_run import run
from tests.functions.test_predict_events import body_of, http_event


def test_multioutput_regressor_publishes_as_regression_and_answers_as_sklearn(
    tmp_path: Path,
) -> None:
    x, y = make_regression(120, 5, n_targets=2, noise=5.0, random_state=0)
    x = x.astype(np.float32)
    model = MultiOutputRegressor(GradientBoostingRegressor(n_estimators=20, random_state=0))
    model.fit(x[:100], y[:100])
    path = tmp_path / "targets.onnx"
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")

    code, out, err = run(store, "publish", str(path), "--name", "targets", "--labels", "a,b")
    assert code != 0 and "comes from a regressor operator" in err, out + err
    code, out, err = run(store, "publish", str(path), "--name", "targets")
    assert code == 0, err
    assert "task regression" in out + err and "--labels" not in out + err
    manifest = json.loads(store.get_bytes("models/targets/versions/1/manifest.json"))
    assert manifest["task"] == "regression"

    service = service_from_env({"AIAAS_MODEL": "targets"}, pool(store, tmp_path))
    body = json.dumps({"inputs": x[100:].tolist()})
    answer = service.handle(http_event("POST", "/models/targets/predict", body))
    assert answer["statusCode"] == 200, answer["body"]
    served = np.asarray(body_of(answer)["outputs"]["variable"])
    np.testing.assert_allclose(served, model.predict(x[100:]), rtol=1e-5, atol=1e-3)
