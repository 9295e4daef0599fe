"""Classifiers whose exported scores are decision values, not probabilities (skl2onnx's LinearSVC,
RidgeClassifier; SVC without probability=True): served as they are, their largest is the
model's own label, and `aiaas publish` says what they are (tests/runtime/test_graph_classes.py
tells them from probabilities in the graph)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.svm import LinearSVC

from functions.runtime.store import LocalStore
from tests.infra.test_publish_classifiers import publish, service, simple_predict, store
from tests.sklearn_models import wine_split

__all__ = ["store"]  # the fixture, used by name


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_decision_values_are_said_to_be_no_probabilities(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    """LinearSVC has no probabilities: its export's `probabilities` are decision values, served
    as they are (their largest is sklearn's label), and publish says so."""
    x, test_x, y, _ = wine_split()
    svc = LinearSVC().fit(x, y)
    path = tmp_path / "svc.onnx"
    path.write_bytes(to_onnx(svc, x[:1]).SerializeToString())
    out = publish(capsys, store, path)
    assert "'probabilities' holds the model's decision values, not probabilities" in out
    answer = simple_predict(service(store, tmp_path), test_x[:5])
    scores = [p["score"] for p in answer["predictions"]]
    assert [p["label"] for p in answer["predictions"]] == [str(c) for c in svc.predict(test_x[:5])]
    assert np.allclose(scores, svc.decision_function(test_x[:5]).max(axis=1), atol=1e-4)


@pytest.mark.parametrize("kind", ["sgd-hinge", "perceptron", "sgd-log"])
def test_a_linear_margin_into_a_zipmap_is_said_to_be_decision_values(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path, kind: str
) -> None:
    """skl2onnx writes SGDClassifier with a margin loss, and Perceptron, as MatMul + Add into a
    ZipMap, no classifier operator: publish said 'activation none' alone, which docs/registry.md reads
    as probabilities, for margins of -27 and 26. With the log loss they are probabilities."""
    from sklearn.linear_model import Perceptron, SGDClassifier

    x, test_x, y, _ = wine_split()
    make = {
        "sgd-hinge": lambda: SGDClassifier(loss="hinge", random_state=0),
        "perceptron": lambda: Perceptron(random_state=0),
        "sgd-log": lambda: SGDClassifier(loss="log_loss", random_state=0),
    }[kind]
    model = make().fit(x, y)
    path = tmp_path / f"{kind}.onnx"
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    out = publish(capsys, store, path)
    said = "holds the model's decision values, not probabilities" in out
    assert said == (kind != "sgd-log"), out
    answer = simple_predict(service(store, tmp_path), test_x[:5])
    assert [p["label"] for p in answer["predictions"]] == [
        str(c) for c in model.predict(test_x[:5])
    ]


def test_kmeans_with_labels_is_refused_its_own_cluster_ids_served_without(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    """skl2onnx's KMeans answers `label` (an ArgMin: the nearest centre) and `scores` (the
    distances). Published with --labels, the distances were served as class scores, highest
    first: every label was the farthest cluster (0 of 8 rows agreed with the model's own)."""
    from sklearn.cluster import KMeans

    from tests.infra.test_publish_classifiers import refused

    x, test_x, _, _ = wine_split()
    kmeans = KMeans(n_clusters=3, n_init=3, random_state=0).fit(x)
    path = tmp_path / "kmeans.onnx"
    path.write_bytes(to_onnx(kmeans, x[:1].astype(np.float32)).SerializeToString())
    said = refused(capsys, store, path, "--labels", "c0,c1,c2")
    assert said.startswith("the model's own output 'label' is an ArgMin, the class of the lowest")
    assert "publish without --labels to serve 'label' as the model answers it" in said
    publish(capsys, store, path)
    answer = simple_predict(service(store, tmp_path), test_x[:8])
    assert answer["outputs"]["label"] == kmeans.predict(test_x[:8].astype(np.float32)).tolist()
