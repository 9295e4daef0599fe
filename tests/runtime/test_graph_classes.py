"""What a classifier's graph says about its classes, read from real exports: skl2onnx (ZipMap,
classifier operators, a constant the label is picked from) and a network's plain logits."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC, LinearSVC

from functions.runtime.errors import BadRequest
from functions.runtime.graph_classes import read_classes
from functions.runtime.introspect import read_signature
from tests import onnx_factory
from tests.sklearn_models import CLASS_NAMES, export, wine_split


def test_zipmap_keys_and_the_label_output(tmp_path: Path) -> None:
    graph = onnx.load(export("logistic", tmp_path).path).graph
    classes = read_classes(graph)
    assert classes.labels == ("0", "1", "2")
    assert dict(classes.zipmap_keys) == {"output_probability": (0, 1, 2)}
    assert classes.label_outputs == {"output_label"}
    assert classes.probability_outputs == {"output_probability"}


def test_classifier_operator_labels_without_zipmap(tmp_path: Path) -> None:
    graph = onnx.load(export("forest", tmp_path, zipmap=False, string_classes=True).path).graph
    classes = read_classes(graph)
    assert classes.labels == CLASS_NAMES
    assert (dict(classes.zipmap_keys), classes.label_outputs) == ({}, {"label"})


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_labels_picked_from_a_constant(tmp_path: Path) -> None:
    """MLPClassifier: ArgMax, then ArrayFeatureExtractor over the classes as a constant."""
    x, _, y, _ = wine_split()
    names = np.asarray(["red", "white", "rosé"])[y]
    mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0).fit(x, names)
    proto = to_onnx(mlp, x[:1], options={id(mlp): {"zipmap": False}})
    classes = read_classes(proto.graph)
    assert classes.labels == ("red", "rosé", "white")  # sklearn's classes_ order
    assert classes.label_outputs == {"label"}
    assert classes.probability_outputs == {"probabilities"}  # a final Softmax


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_raw_decision_scores_are_labelled_too() -> None:
    x, _, y, _ = wine_split()
    svc = LinearSVC().fit(x, y)
    proto = to_onnx(svc, x[:1])
    classes = read_classes(proto.graph)
    assert classes.labels == ("0", "1", "2") and classes.label_outputs == {"label"}
    assert classes.decision_outputs == {"probabilities"} and not classes.probability_outputs


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")  # sklearn 1.9 deprecates probability=True
@pytest.mark.parametrize(
    ("estimator", "decisions"),
    [
        (SVC(), {"output_probability"}),  # one-vs-one votes, then a ZipMap: not probabilities
        (SVC(probability=True), set()),  # Platt scaling (prob_a) in the SVMClassifier
        (LogisticRegression(max_iter=500), set()),  # post_transform SOFTMAX, then a Normalizer
        (RandomForestClassifier(n_estimators=3, random_state=0), set()),  # averaged votes
    ],
    ids=["svc", "svc-probability", "logistic", "forest"],
)
def test_decision_values_are_told_from_probabilities(
    estimator: object, decisions: set[str]
) -> None:
    """skl2onnx's default exports: only scores no transform made probabilities are decisions."""
    x, _, y, _ = wine_split()
    proto = to_onnx(estimator.fit(x, y), x[:1])  # type: ignore[attr-defined]
    classes = read_classes(proto.graph)
    assert classes.decision_outputs == decisions
    assert classes.probability_outputs == ({"output_probability"} - decisions)


def test_a_networks_logits_say_nothing(tmp_path: Path) -> None:
    graph = onnx.load(onnx_factory.linear_classifier(tmp_path / "m.onnx")).graph
    classes = read_classes(graph)
    assert (classes.labels, dict(classes.zipmap_keys), classes.label_outputs) == ((), {}, set())


def test_a_zipmap_without_onnx_installed_is_refused_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = export("logistic", tmp_path).path
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(BadRequest) as caught:
        read_signature(path)
    assert caught.value.message == (
        "output 'output_probability' is a ZipMap (seq(map(int64,tensor(float)))); reading its "
        "classes from the graph needs the onnx package: pip install onnx (or export without "
        "ZipMap: skl2onnx options={id(model): {'zipmap': False}})"
    )
    no_zipmap = read_signature(export("logistic", tmp_path, zipmap=False).path)
    assert [o.name for o in no_zipmap.outputs] == ["label", "probabilities"]


def test_without_onnx_publish_says_what_it_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.cli.main import main

    path = export("logistic", tmp_path, zipmap=False).path
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    store = str(tmp_path / "store")
    assert main(["--store", store, "publish", str(path), "--name", "w", "--labels", "a,b,c"]) == 0
    notes = capsys.readouterr().out.splitlines()[1:]
    assert notes == [
        "  classes a, b, c (from --labels)",
        "  class scores from output 'probabilities' (activation none)",
        "  the onnx package is not installed, so nothing was read from the graph: "
        "'probabilities' answered made-up rows with probabilities (within [0, 1], each row "
        "summing to 1), so its activation is none (--activation overrides; pip install onnx to "
        "read the graph)",
        "  card: card/card.md (no metrics: --data FILE --target COLUMN adds them); "
        "`aiaas show w:1` prints its path",
    ]
