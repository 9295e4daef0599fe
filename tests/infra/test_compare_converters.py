"""`aiaas compare` of a LightGBM version against an XGBoost one under one model name, both
exported by onnxmltools with its defaults and published with the same --labels. LightGBM's
probabilities are a ZipMap (served as float32 [N, classes] in its keys' order), XGBoost's a
plain tensor of the same name: they were "not alike", left out, and compare said
"max |B-A| 0" of versions whose probabilities differ by ~0.1.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import lightgbm
import numpy as np
import onnxruntime as ort
import xgboost
from onnxmltools import convert_lightgbm, convert_xgboost

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.run import CompareRequest, compare_versions
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_publish_converters import TREES, _typed, rows

LABELS = "setosa,versicolor,virginica"


def _probabilities(path: Path, x: np.ndarray) -> np.ndarray:
    found = ort.InferenceSession(str(path)).run(["probabilities"], {"input": x})[0]
    if isinstance(found, list):  # a ZipMap: one {class: probability} a row
        return np.array([[row[k] for k in sorted(row)] for row in found])
    return np.asarray(found, dtype=np.float64)


def test_lightgbm_and_xgboost_probabilities_are_compared(tmp_path: Path) -> None:
    x, y, test = rows("multiclass")
    lgbm = convert_lightgbm(lightgbm.LGBMClassifier(**TREES).fit(x, y), initial_types=_typed(x))
    xgb = xgboost.XGBClassifier(n_estimators=5, max_depth=2, n_jobs=1).fit(x, y)
    paths = [tmp_path / "lgbm.onnx", tmp_path / "xgb.onnx"]
    paths[0].write_bytes(lgbm.SerializeToString())
    paths[1].write_bytes(convert_xgboost(xgb, initial_types=_typed(x)).SerializeToString())
    store = LocalStore(tmp_path / "store")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for path in paths:
            argv = ["publish", str(path), "--name", "iris", "--labels", LABELS]
            assert main(["--store", store.uri, *argv]) == 0
    header = ",".join(f"input_{i}" for i in range(x.shape[1]))
    body = header + "\n" + "\n".join(",".join(map(repr, map(float, r))) for r in test) + "\n"
    store.put_bytes("batch/iris/input/rows.csv", body.encode())
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    report = compare_versions(pool, CompareRequest("iris", "1", "2", "batch/iris/input/rows.csv"))
    assert report["rows"]["compared"] == len(test)
    diff = np.abs(_probabilities(paths[1], test) - _probabilities(paths[0], test))
    assert diff.max() > 0.01
    assert abs(report["max_abs_diff"] - diff.max()) < 1e-6
