"""`aiaas explain` of an unsupervised scikit-learn model exported with skl2onnx's defaults:
KMeans and IsolationForest put an int64 `label` first (a cluster id, -1/1) and their float
`scores` after it. The label was explained as a quantity ("label_0 = 2 (base 1.2)": a cluster
id averaged over the background); the scores are what can be attributed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.ensemble import IsolationForest

from infra.cli.main import main

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.mark.parametrize("kind", ["kmeans", "isolation-forest"])
def test_the_float_scores_are_explained_not_the_int_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    x = load_iris(return_X_y=True)[0].astype(np.float32)
    if kind == "kmeans":
        model = KMeans(n_clusters=3, n_init=3, random_state=0).fit(x)
        onnx = to_onnx(model, x[:1])
    else:
        model = IsolationForest(n_estimators=10, random_state=0).fit(x)
        onnx = to_onnx(model, x[:1], target_opset={"": 17, "ai.onnx.ml": 3})
    path, data, store = tmp_path / "m.onnx", tmp_path / "train.npy", str(tmp_path / "store")
    path.write_bytes(onnx.SerializeToString())
    np.save(data, x)
    assert main(["--store", store, "publish", str(path), "--name", "m"]) == 0
    assert main(["--store", store, "baseline", "m", str(data)]) == 0
    capsys.readouterr()
    assert main(["--store", store, "explain", "m", "--inputs", json.dumps([ROW]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    width = 3 if kind == "kmeans" else 1  # KMeans: a distance to each centre; a forest: a score
    assert doc["outputs"] == [f"scores_{i}" for i in range(width)]
    (row,) = doc["explanations"]
    expected = model.transform(x[:1] * 0 + ROW) if kind == "kmeans" else None
    if expected is not None:  # the explained prediction is the model's own scores for the row
        assert np.allclose(row["prediction"], expected[0], atol=1e-4)
    sums = np.sum(row["attributions"], axis=0) + row["base_value"]
    assert np.allclose(sums, row["prediction"], atol=1e-4)  # additivity holds for them
