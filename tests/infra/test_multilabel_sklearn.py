"""Multi-label scikit-learn classifiers (a forest or k-nearest-neighbours fitted on a [N, 3]
0/1 label matrix), exported by skl2onnx with `zipmap: False` (its default ZipMap does not load
in onnxruntime). Their probabilities are [labels, N, 2]: one [N, 2] table a label, the rows on
axis 1.

`aiaas publish` took the forest as a classifier of 207 classes (the leaves' ids of a tree) and
every request to it was a 500; `aiaas batch` of the k-NN on a file of 3 rows (as many as its
labels) succeeded and wrote each label's table as a row: row 0 got label 0's probabilities of
rows 0, 1 and 2. Publish now refuses the forest as a classifier, saying what works (`--task
other`), and batch scoring refuses such an output before reading the file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import make_multilabel_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier

from functions.predict.service import service_from_env
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.batch_support import pool, run
from tests.cli_run import run as cli
from tests.functions.test_predict_events import body_of, http_event

LABELS = 3


def multilabel(path: Path, estimator: object) -> tuple[Path, np.ndarray]:
    """`estimator` fitted on 3 labels and exported with zipmap False; and 3 rows to score."""
    x, y = make_multilabel_classification(200, 6, n_classes=LABELS, random_state=0)
    x = x.astype(np.float32)
    fitted = estimator.fit(x[:150], y[:150])  # type: ignore[attr-defined]
    onx = to_onnx(fitted, x[:1], options={id(fitted): {"zipmap": False}})
    path.write_bytes(onx.SerializeToString())
    return path, x[150 : 150 + LABELS]


def publish(store: LocalStore, path: Path, name: str, *more: str) -> int:
    return main(["--store", store.uri, "publish", str(path), "--name", name, *more])


def test_forest_is_refused_as_a_classifier_and_served_whole_as_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    path, rows = multilabel(tmp_path / "forest.onnx", forest)
    assert publish(store, path, "tags") != 0
    error = capsys.readouterr().err
    assert "output 'probabilities' is [3, N, 2]: its rows are not on the first axis" in error
    assert "--task other" in error
    assert not store.exists("models/tags/versions/1/manifest.json")

    assert publish(store, path, "tags", "--task", "other") == 0, capsys.readouterr().err
    served = service_from_env({"AIAAS_MODEL": "tags"}, pool(store, tmp_path))
    body = json.dumps({"inputs": rows.tolist()})
    answer = served.handle(http_event("POST", "/models/tags/predict", body))
    assert answer["statusCode"] == 200, answer["body"]
    label, probabilities = ort.InferenceSession(str(path)).run(None, {"X": rows})
    outputs = body_of(answer)["outputs"]
    assert outputs["label"] == label.tolist()
    np.testing.assert_allclose(outputs["probabilities"], probabilities, atol=1e-6)


def test_batch_refuses_rows_on_a_later_axis_even_when_the_file_has_as_many_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    path, rows = multilabel(tmp_path / "knn.onnx", KNeighborsClassifier())
    assert publish(store, path, "knn") == 0, capsys.readouterr().err
    lines = [",".join(f"X_{i}" for i in range(rows.shape[1]))]
    lines += [",".join(repr(v) for v in row) for row in rows.tolist()]
    store.put_bytes("batch/knn/input/rows.csv", ("\n".join(lines) + "\n").encode())
    summary = run(store, tmp_path, "batch/knn/input/rows.csv")
    assert summary["status"] == "failed", summary
    assert "output 'probabilities' is [3, N, 2]: its rows are on axis 1" in summary["error"]
    assert "predict API" in summary["error"]
    assert not store.exists("batch/knn/output/rows.csv")


def test_a_multilabel_classifier_is_published_with_a_warning_and_served_as_it_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An MLPClassifier on a label matrix (skl2onnx's default ZipMap export loads): its own
    label output answers a 0/1 a class, which the single `predictions` label does not say."""
    store = LocalStore(tmp_path / "store")
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)
    x, y = make_multilabel_classification(200, 6, n_classes=LABELS, random_state=0)
    x = x.astype(np.float32)
    mlp.fit(x[:150], y[:150])
    path = tmp_path / "mlp.onnx"
    path.write_bytes(to_onnx(mlp, x[:1]).SerializeToString())
    assert publish(store, path, "tags") == 0
    said = capsys.readouterr()
    assert "warning: output 'output_label' answers 3 labels a row" in said.out + said.err
    served = service_from_env({"AIAAS_MODEL": "tags"}, pool(store, tmp_path))
    body = json.dumps({"inputs": x[150:].tolist()})
    answer = served.handle(http_event("POST", "/models/tags/predict", body))
    assert answer["statusCode"] == 200, answer["body"]
    outputs = body_of(answer)["outputs"]
    assert outputs["output_label"] == mlp.predict(x[150:]).tolist()
    np.testing.assert_allclose(outputs["output_probability"], mlp.predict_proba(x[150:]), atol=1e-5)

    single = MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)
    single.fit(x[:150], y[:150].argmax(axis=1))
    path.write_bytes(to_onnx(single, x[:1]).SerializeToString())
    assert publish(store, path, "one") == 0
    said = capsys.readouterr()
    assert "labels a row" not in said.out + said.err


def test_explain_refuses_rows_on_a_later_axis(tmp_path: Path) -> None:
    """Explain checked only that the first axis was as long as the rows sent: a call of 3
    masked rows to a 3-label model would have been read as [3, 6], each row's values the
    labels' tables; it now refuses such an output whatever the rows."""
    store = LocalStore(tmp_path / "store")
    path, rows = multilabel(tmp_path / "knn.onnx", KNeighborsClassifier())
    code, _, err = cli(store, "publish", str(path), "--name", "knn")
    assert code == 0, err
    data = tmp_path / "rows.csv"
    x, _ = make_multilabel_classification(60, 6, n_classes=LABELS, random_state=1)
    lines = [",".join(f"X_{i}" for i in range(6))] + [",".join(map(str, r)) for r in x.tolist()]
    data.write_text("\n".join(lines) + "\n")
    code, _, err = cli(store, "baseline", "knn", str(data))
    assert code == 0, err
    code, _, err = cli(store, "explain", "knn", "--inputs", json.dumps(rows[:1].tolist()))
    assert code != 0
    assert "its rows on a later axis than the first" in err, err


def test_one_vs_rest_on_a_label_matrix_is_told_it_is_multilabel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """skl2onnx names a multi-label OneVsRestClassifier's classes 0, 1 (each label's), beside
    3 scores a row: publish said to pass --scores-output for its 2 classes."""
    store = LocalStore(tmp_path / "store")
    ovr = OneVsRestClassifier(LogisticRegression())
    path, rows = multilabel(tmp_path / "ovr.onnx", ovr)
    assert publish(store, path, "ovr") != 0
    error = capsys.readouterr().err
    assert "a multi-label model (one 0/1 a label)" in error and "--task other" in error
    assert "--scores-output" not in error
    assert publish(store, path, "ovr", "--task", "other") == 0
    served = service_from_env({"AIAAS_MODEL": "ovr"}, pool(store, tmp_path))
    body = json.dumps({"inputs": rows.tolist()})
    answer = served.handle(http_event("POST", "/models/ovr/predict", body))
    assert answer["statusCode"] == 200, answer["body"]
    outputs = body_of(answer)["outputs"]
    np.testing.assert_allclose(outputs["probabilities"], ovr.predict_proba(rows), atol=1e-5)
