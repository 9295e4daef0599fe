"""A drift baseline's columns named as the rest of the product names them.

iris trained with scikit-learn and exported by skl2onnx with its default options (its input is
`X`), published and baselined by the real CLI from a CSV of `X_0` ... `X_3`, the columns batch
scoring reads and explanations and capture exports name. The baseline, and so `aiaas monitor`,
called them `x_0` ... `x_3`: a table whose names were in none of the user's files. New
baselines say `X_0` ...; one stored before (`x_0` ...) is still read, counted by the predict
function's real handler and judged by `aiaas monitor`, under the names it was stored with.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.runtime.drift.watched import BASELINE_FILE
from functions.runtime.refs import version_prefix
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import http_event
from tests.infra.test_explain_wide_windows import _service

COLUMNS = ["X_0", "X_1", "X_2", "X_3"]  # what `aiaas batch` reads for skl2onnx's `X`


def _baselined(tmp_path: Path) -> tuple[LocalStore, np.ndarray]:
    """iris:1 published with skl2onnx's defaults and baselined from a CSV of X_0 ... X_3."""
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = tmp_path / "iris.onnx"
    model.write_bytes(
        to_onnx(LogisticRegression(max_iter=500).fit(x, y), x[:1]).SerializeToString()
    )
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(model), "--name", "iris"]) == 0
    manifest = Registry(store).manifest("iris", "1")
    assert (manifest.inputs[0].name, manifest.features) == ("X", ())  # no names of its own
    csv = tmp_path / "base.csv"
    lines = [",".join(COLUMNS)] + [",".join(f"{v:g}" for v in row) for row in x.tolist()]
    csv.write_text("\n".join(lines) + "\n")
    assert main(["--store", store.uri, "baseline", "iris:1", str(csv)]) == 0
    return store, x


def _monitored(
    store: LocalStore, tmp_path: Path, x: np.ndarray, capsys: pytest.CaptureFixture[str]
) -> dict:
    """Serve the training rows twice, petal length (column 2) 3 cm longer, through the predict
    function, then `aiaas monitor --json`."""
    x = np.concatenate([x, x])
    x[:, 2] += 3.0
    service = _service(store, tmp_path, "iris")
    for start in range(0, len(x), 50):
        body = json.dumps({"inputs": x[start : start + 50].tolist()})
        response = service.handle(http_event("POST", "/models/iris/predict", body))
        assert response["statusCode"] == 200, response["body"]
    assert service.plane.drift is not None
    service.plane.drift.flush(last=True)
    capsys.readouterr()
    assert main(["--store", store.uri, "monitor", "iris", "--json", "--no-png"]) == 0
    return json.loads(capsys.readouterr().out)


def _stored_features(store: LocalStore) -> list[str]:
    key = f"{version_prefix('iris', '1')}/{BASELINE_FILE}"
    return list(json.loads(store.get_bytes(key))["features"])


def test_a_new_baseline_names_its_columns_as_batch_and_explain_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, x = _baselined(tmp_path)
    assert _stored_features(store) == COLUMNS  # before: x_0 ... x_3
    doc = _monitored(store, tmp_path, x, capsys)
    assert doc["rows"] == 2 * len(x)
    named = {f["name"] for f in doc["features"]}
    assert named == {*COLUMNS, "(prediction)"}, named
    assert all(f["judged"] for f in doc["features"])
    assert "X_2" in doc["drifted"] and "X_0" not in doc["drifted"]


def test_a_baseline_stored_with_the_earlier_names_is_still_counted_and_judged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, x = _baselined(tmp_path)
    key = f"{version_prefix('iris', '1')}/{BASELINE_FILE}"
    doc = json.loads(store.get_bytes(key))
    doc["features"] = [f"x_{i}" for i in range(4)]  # as baselines were stored before
    store.put_bytes(key, json.dumps(doc).encode())
    report = _monitored(store, tmp_path, x, capsys)
    assert report["rows"] == 2 * len(x)  # the predict function counted its rows
    named = {f["name"] for f in report["features"]}
    assert named == {"x_0", "x_1", "x_2", "x_3", "(prediction)"}, named
    assert all(f["judged"] for f in report["features"])
    assert "x_2" in report["drifted"] and "x_0" not in report["drifted"]
