"""`aiaas publish` of classifiers from other exporters: labels, scores and activation read from
the graph, served through the predict handler on API Gateway v2 events, each compared with the
original model's own predictions on the whole test set.

scikit-learn models are exported by skl2onnx with its default options (a ZipMap output) and
with `zipmap: False`; the torch classifier is one this project trained and exported itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.manifest import ModelManifest
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event
from tests.sklearn_models import CLASS_NAMES, export, wine_split
from tests.torchless import torch_or_skip

KINDS = ("logistic", "forest", "pipeline")


def publish(capsys: pytest.CaptureFixture[str], store: LocalStore, path: Path, *argv: str) -> str:
    code = main(["--store", store.uri, "publish", str(path), "--name", "wine", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def refused(capsys: pytest.CaptureFixture[str], store: LocalStore, path: Path, *argv: str) -> str:
    code = main(["--store", store.uri, "publish", str(path), "--name", "wine", *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert not Registry(store).models(), "a refused publish must write nothing"
    return err.strip().removeprefix("aiaas publish: error: ")


def service(store: LocalStore, workdir: Path) -> PredictService:
    pool = ModelPool(Registry(store), ArtifactCache(store, workdir / "cache"))
    return service_from_env({"AIAAS_MODEL": "wine"}, pool)


def simple_predict(served: PredictService, rows: np.ndarray, **query: str) -> dict[str, Any]:
    body = json.dumps({"inputs": rows.tolist()})
    answer = served.handle(http_event("POST", "/models/wine/predict", body, query=query or None))
    assert answer["statusCode"] == 200, answer["body"]
    return body_of(answer)  # type: ignore[no-any-return]


def oip_infer(served: PredictService, rows: np.ndarray) -> dict[str, Any]:
    doc = {
        "inputs": [
            {
                "name": "X",
                "shape": list(rows.shape),
                "datatype": "FP32",
                "data": rows.ravel().tolist(),
            }
        ]
    }
    event = http_event("POST", "/v2/models/wine/infer", json.dumps(doc))
    answer = served.handle(event)
    assert answer["statusCode"] == 200, answer["body"]
    return {item["name"]: item for item in body_of(answer)["outputs"]}


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


# ---- scikit-learn, default options and without ZipMap -----------------------------------------


@pytest.mark.parametrize("string_classes", [False, True], ids=["int-classes", "str-classes"])
@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
@pytest.mark.parametrize("kind", KINDS)
def test_sklearn_classifier_serves_its_own_predictions(
    capsys: pytest.CaptureFixture[str],
    store: LocalStore,
    tmp_path: Path,
    kind: str,
    zipmap: bool,
    string_classes: bool,
) -> None:
    model = export(kind, tmp_path, zipmap=zipmap, string_classes=string_classes)
    out = publish(capsys, store, model.path)  # no flags: everything comes from the graph
    probabilities = "output_probability" if zipmap else "probabilities"
    label_output = "output_label" if zipmap else "label"
    assert f"classes {', '.join(model.classes)} (read from the graph)" in out
    assert f"class scores from output '{probabilities}' (activation none)" in out

    manifest = Registry(store).manifest("wine", "1")
    assert (manifest.task, manifest.labels) == ("classification", tuple(model.classes))
    assert manifest.postprocessing is not None
    assert manifest.postprocessing.scores_output == probabilities
    assert manifest.postprocessing.activation == "none"  # skl2onnx gives probabilities
    assert manifest.postprocessing.label_output == label_output
    scores_spec = next(s for s in manifest.outputs if s.name == probabilities)
    assert (scores_spec.dtype, scores_spec.shape) == ("float32", (-1, 3))

    served = service(store, tmp_path)
    body = simple_predict(served, model.x_test)
    assert [p["label"] for p in body["predictions"]] == model.expected
    proba = model.estimator.predict_proba(model.x_test)
    np.testing.assert_allclose(
        [p["score"] for p in body["predictions"]], proba.max(axis=1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(body["outputs"][probabilities], proba, rtol=1e-4, atol=1e-5)
    assert [str(v) for v in body["outputs"][label_output]] == model.expected

    outputs = oip_infer(served, model.x_test)
    assert outputs[probabilities]["datatype"] == "FP32"
    assert outputs[probabilities]["shape"] == [len(model.x_test), 3]
    np.testing.assert_allclose(
        np.reshape(outputs[probabilities]["data"], (-1, 3)), proba, rtol=1e-4, atol=1e-5
    )
    assert outputs[label_output]["datatype"] == ("BYTES" if string_classes else "INT64")
    assert [str(v) for v in outputs[label_output]["data"]] == model.expected


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
def test_binary_classifier(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path, zipmap: bool
) -> None:
    x_train, x_test, y_train, _ = wine_split()
    names = np.where(y_train == 0, "barolo", "other")
    model = LogisticRegression(max_iter=10000).fit(x_train, names)
    options = None if zipmap else {id(model): {"zipmap": False}}
    path = tmp_path / "binary.onnx"
    path.write_bytes(to_onnx(model, x_train[:1], options=options).SerializeToString())
    publish(capsys, store, path)
    body = simple_predict(service(store, tmp_path), x_test)
    assert [p["label"] for p in body["predictions"]] == model.predict(x_test).tolist()
    np.testing.assert_allclose(
        [p["score"] for p in body["predictions"]],
        model.predict_proba(x_test).max(axis=1),
        rtol=1e-4,
        atol=1e-5,
    )


def test_top_k_ranks_zipmap_probabilities(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    model = export("logistic", tmp_path, string_classes=True)
    publish(capsys, store, model.path)
    body = simple_predict(service(store, tmp_path), model.x_test[:5], top_k="3")
    proba = model.estimator.predict_proba(model.x_test[:5])
    for prediction, row in zip(body["predictions"], proba, strict=True):
        ranked = [model.classes[i] for i in np.argsort(-row)]
        assert [alt["label"] for alt in prediction["top_k"]] == ranked
        assert sum(alt["score"] for alt in prediction["top_k"]) == pytest.approx(1.0, abs=1e-5)


# ---- what users reported ------------------------------------------------------------------------


def test_display_labels_for_integer_classes_without_zipmap(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    """Reported: every row came back {"label": "0", "score": 1.0} (scores read from `label`)."""
    model = export("logistic", tmp_path, zipmap=False)
    publish(capsys, store, model.path, "--labels", ",".join(CLASS_NAMES))
    body = simple_predict(service(store, tmp_path), model.x_test)
    assert [p["label"] for p in body["predictions"]] == [f"class_{c}" for c in model.expected]
    proba = model.estimator.predict_proba(model.x_test)
    np.testing.assert_allclose(
        [p["score"] for p in body["predictions"]], proba.max(axis=1), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "no-zipmap"])
def test_a_label_list_of_the_wrong_length_is_refused(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path, zipmap: bool
) -> None:
    model = export("logistic", tmp_path, zipmap=zipmap)
    assert refused(capsys, store, model.path, "--labels", "a,b") == (
        "--labels lists 2 labels but the model has 3 classes (0, 1, 2); give one label per class, "
        "in the model's order"
    )


def test_a_label_list_of_the_wrong_length_is_refused_for_a_scores_tensor(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    path = torch_like_logits(tmp_path / "logits.onnx", classes=3)
    assert refused(capsys, store, path, "--labels", "a,b,c,d") == (
        "--labels lists 4 labels but the model has 3 classes (output 'logits' has 3 scores per "
        "row); give one label per class, in the model's order"
    )


# The same names but for their case (or spaces) too: every answer named the wrong class.
@pytest.mark.parametrize(
    "labels", ["class_2,class_1,class_0", "CLASS_2,Class_1,class_0", " class_1 ,class_0,class_2"]
)
def test_the_graph_labels_in_another_order_are_refused(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path, labels: str
) -> None:
    model = export("forest", tmp_path, string_classes=True)
    assert refused(capsys, store, model.path, "--labels", labels) == (
        "--labels lists the model's classes in another order (the model's order is class_0, "
        "class_1, class_2); leave --labels out to use the model's own, or give your names in "
        "that order"
    )


def test_the_label_output_is_not_a_scores_output(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    model = export("logistic", tmp_path, zipmap=False)
    assert refused(capsys, store, model.path, "--scores-output", "label") == (
        "--scores-output 'label' holds int64 class labels, not class scores; this model's "
        "scores output is 'probabilities'"
    )
    assert refused(capsys, store, model.path, "--scores-output", "nope") == (
        "--scores-output 'nope' is not an output of the model; it has ['label', 'probabilities']"
    )


def two_heads(path: Path) -> Path:
    """A network with an embedding output first and its logits second, no classes in the graph."""
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["embedding"]),
            helper.make_node("ReduceSum", ["x"], ["logits_sum"], keepdims=1, axes=[1]),
            helper.make_node(
                "Concat", ["logits_sum", "logits_sum", "logits_sum"], ["logits"], axis=1
            ),
            helper.make_node("ArgMax", ["logits"], ["best"], axis=1, keepdims=0),
        ],
        "two-heads",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("best", TensorProto.INT64, ["N"]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_the_output_with_one_score_per_label_is_picked(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    path = two_heads(tmp_path / "two-heads.onnx")
    out = publish(capsys, store, path, "--labels", "a,b,c")
    assert "class scores from output 'logits' (activation softmax)" in out
    other = LocalStore(tmp_path / "other")
    assert refused(capsys, other, path, "--labels", "a,b,c", "--scores-output", "best") == (
        "--scores-output 'best' holds int64 class labels, not class scores; this model's scores "
        "output is 'logits'"
    )


def test_a_model_without_a_float_output_is_no_classifier(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    from tests import onnx_factory

    path = onnx_factory.identity(tmp_path / "ints.onnx", elem=TensorProto.INT64)
    assert refused(capsys, store, path, "--labels", "a,b,c") == (
        "no output of the model holds class scores (float): it has ['y (int64)']; publish it "
        "with --task other"
    )


def test_explicit_outputs_and_activation_win(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    model = export("pipeline", tmp_path, zipmap=False)
    out = publish(
        capsys, store, model.path, "--scores-output", "probabilities", "--activation", "none"
    )
    assert "class scores from output 'probabilities' (activation none)" in out
    manifest = Registry(store).manifest("wine", "1")
    assert manifest.postprocessing is not None
    assert manifest.postprocessing.activation == "none"


def test_a_final_softmax_is_not_applied_twice(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    from tests.infra.test_cli_registry import foreign_onnx

    path = foreign_onnx(tmp_path / "foreign.onnx")  # outputs `probabilities` (Softmax), `total`
    out = publish(capsys, store, path, "--labels", "cat,dog,fish")
    assert "class scores from output 'probabilities' (activation none)" in out


def test_a_label_output_must_hold_labels(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    model = export("logistic", tmp_path, zipmap=False)
    assert refused(capsys, store, model.path, "--label-output", "probabilities") == (
        "--label-output 'probabilities' is float32 [-1, 3]; a label output holds one int64 or "
        "string class per row"
    )


def test_publish_help_names_the_output_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["publish", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--scores-output" in text and "--label-output" in text and "--activation" in text
    assert "read from the graph" in text


# ---- a torch classifier this project trained ----------------------------------------------------


def torch_like_logits(path: Path, classes: int) -> Path:
    """logits = x @ W: the shape of a torch classifier's export (no labels in the graph)."""
    from tests import onnx_factory

    return onnx_factory.linear_classifier(path, features=4, classes=classes)


def test_torch_classifier_trained_here(
    capsys: pytest.CaptureFixture[str], store: LocalStore, tmp_path: Path
) -> None:
    torch_or_skip()  # it trains
    from training.job import run_job
    from training.spec import parse_spec

    spec = parse_spec(
        {
            "name": "iris-torch",
            "task": "classification",
            "recipe": {"name": "logistic", "params": {}},
            "dataset": {"path": "bundled:iris.csv", "target": "species"},
            "epochs": 5,
            "batch_size": 32,
            "learning_rate": 0.05,
            "seed": 0,
        }
    )
    trained = run_job(spec, Registry(store), tmp_path / "run", progress=False)
    labels = trained.manifest.labels
    out = publish(capsys, store, trained.model_path, "--labels", ",".join(labels))
    assert "class scores from output 'logits' (activation softmax)" in out
    manifest: ModelManifest = Registry(store).manifest("wine", "1")
    assert manifest.postprocessing == trained.manifest.postprocessing

    data = np.loadtxt(
        Path(__file__).resolve().parents[2] / "training" / "data" / "iris.csv",
        delimiter=",",
        skiprows=1,
        usecols=range(4),
        dtype=np.float32,
    )
    session = ort.InferenceSession(str(trained.model_path), providers=["CPUExecutionProvider"])
    logits = session.run(["logits"], {session.get_inputs()[0].name: data})[0]
    body = simple_predict(service(store, tmp_path), data)
    assert [p["label"] for p in body["predictions"]] == [labels[i] for i in logits.argmax(axis=1)]
    exps = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(
        [p["score"] for p in body["predictions"]],
        (exps / exps.sum(axis=1, keepdims=True)).max(axis=1),
        rtol=1e-5,
    )
