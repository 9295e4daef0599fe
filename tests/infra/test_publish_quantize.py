"""`aiaas publish --quantize int8|fp16 [--data FILE]` on real models: a scikit-learn MLP trained
on the bundled digits (skl2onnx, default options), the demo's MLP 64->256->256->10 (Gemm), a
user's transformer with its tokenizer.json, and models quantization does not apply to.

Each published variant is checked against what its own file gives in a bare onnxruntime session,
and the accuracy the manifest records against the accuracy computed here from the labels.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from bench.models import mlp_onnx
from functions.runtime.cache import ArtifactCache
from functions.runtime.codecs import simple
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import hf_transformer, onnx_factory
from tests.sklearn_models import export, one_blas_thread


def publish(store: LocalStore, model: Path, name: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", name, *argv])
    return code, out.getvalue(), err.getvalue()


def published(store: LocalStore, model: Path, name: str, *argv: str) -> dict[str, Any]:
    code, _, err = publish(store, model, name, *argv)
    assert code == 0, err
    return Registry(store).manifest(name, "1").extras["quantization"]  # type: ignore[no-any-return]


def refused(tmp_path: Path, model: Path, *argv: str) -> str:
    store = LocalStore(tmp_path / "refused")
    code, out, err = publish(store, model, "refused", *argv)
    assert (code, out) == (1, ""), err
    assert not Registry(store).models(), "a refused publish must write nothing"
    return err.strip().removeprefix("aiaas publish: error: ")


def served_labels(store: LocalStore, tmp_path: Path, name: str, x: np.ndarray) -> list[str]:
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    model = pool.load_version(name, "1")
    doc = simple.encode(model.manifest, model.predict({model.manifest.inputs[0].name: x}))
    return [row["label"] for row in doc["predictions"]]


def stored_file(store: LocalStore, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}-stored.onnx"
    path.write_bytes(store.get_bytes(f"models/{name}/versions/1/model.onnx"))
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """An MLPClassifier on the bundled digits, exported by skl2onnx; its test rows."""
    root = tmp_path_factory.mktemp("digits")
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x.astype(np.float32) / 16, y, test_size=0.3, random_state=0, stratify=y
    )
    estimator = MLPClassifier(hidden_layer_sizes=(64,), max_iter=60, random_state=0)
    with warnings.catch_warnings():  # 60 epochs do not converge fully; ~96% accuracy is enough
        warnings.simplefilter("ignore", ConvergenceWarning)
        with one_blas_thread():
            estimator.fit(x_train, y_train)
    path = root / "digits.onnx"
    path.write_bytes(to_onnx(estimator, x_train[:1]).SerializeToString())
    return path, x_test, y_test


def test_int8_sklearn_mlp_with_its_accuracy(digits, tmp_path: Path) -> None:
    path, x_test, y_test = digits
    data = tmp_path / "test.npz"
    np.savez(data, x=x_test, y=y_test)
    store = LocalStore(tmp_path / "store")
    record = published(store, path, "digits", "--quantize", "int8", "--data", str(data))
    stored = stored_file(store, "digits", tmp_path)
    assert record["method"] == "int8" and "quantize_dynamic" in record["tool"]
    assert record["source"]["size"] == record["source_bytes"] == path.stat().st_size
    assert record["quantized_bytes"] == stored.stat().st_size < 0.5 * path.stat().st_size

    # The accuracy before and after, as computed here from each file's own session.
    def accuracy(file: Path) -> float:
        session = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
        return float(np.mean(session.run(None, {"X": x_test})[0] == y_test))

    evaluation = record["evaluation"]
    assert (evaluation["metric"], evaluation["rows"]) == ("accuracy", len(y_test))
    assert evaluation["before"] == pytest.approx(accuracy(path), abs=1e-6)
    assert evaluation["after"] == pytest.approx(accuracy(stored), abs=1e-6)
    assert evaluation["before"] > 0.9 and abs(evaluation["change"]) < 0.05
    session = ort.InferenceSession(str(stored), providers=["CPUExecutionProvider"])
    own = [str(label) for label in session.run(None, {"X": x_test})[0]]
    assert served_labels(store, tmp_path, "digits", x_test) == own
    # int8 scales activations per request: a row sent alone may be answered otherwise than in
    # a batch. Measured on the first 500 rows, as this file's own session answers them.
    alone = [str(session.run(None, {"X": x_test[i : i + 1]})[0][0]) for i in range(500)]
    share = np.mean([a == b for a, b in zip(alone, own[:500], strict=True)])
    assert evaluation["alone"]["rows"] == 500
    assert evaluation["alone"]["same_answer_share"] == pytest.approx(share, abs=1e-6)
    assert evaluation["alone"]["max_abs_output_diff"] > 0


@pytest.mark.parametrize("method", ["fp16", "int8"])
def test_demo_mlp_keeps_float32_inputs_and_outputs(method: str, tmp_path: Path) -> None:
    mlp = mlp_onnx(tmp_path / "mlp.onnx")
    rows = np.random.default_rng(0).normal(size=(200, 64)).astype(np.float32)
    session = ort.InferenceSession(str(mlp), providers=["CPUExecutionProvider"])
    truth = session.run(None, {"x": rows})[0].argmax(axis=1)
    data = tmp_path / "rows.jsonl"
    lines = [
        json.dumps({"x": row.tolist(), "label": int(t)}) for row, t in zip(rows, truth, strict=True)
    ]
    data.write_text("\n".join(lines) + "\n")
    store = LocalStore(tmp_path / "store")
    labels = ",".join(str(i) for i in range(10))
    # An untrained network on random rows: int8 moves a few of its near-ties (2 points).
    argv = ("--labels", labels, "--quantize", method, "--data", str(data), "--max-drop", "10")
    code, out, err = publish(store, mlp, "mlp", *argv)
    assert code == 0, err
    manifest = Registry(store).manifest("mlp", "1")
    record = manifest.extras["quantization"]
    assert [(s.name, s.dtype) for s in (*manifest.inputs, *manifest.outputs)] == [
        ("x", "float32"),
        ("logits", "float32"),
    ]
    assert record["size_ratio"] < (0.55 if method == "fp16" else 0.35)
    assert record["evaluation"]["before"] == 1.0  # the labels are the float model's own
    assert record["evaluation"]["after"] > 0.9
    assert ("alone" in record["evaluation"]) == (method == "int8")  # fp16 needs no such check
    moved = method == "int8" and record["evaluation"]["alone"]["same_answer_share"] < 1
    assert ("warning: int8 answers depend on the other rows of a request" in out) == moved
    stored = stored_file(store, "mlp", tmp_path)
    variant = ort.InferenceSession(str(stored), providers=["CPUExecutionProvider"])
    assert variant.get_inputs()[0].type == "tensor(float)"
    own = [str(i) for i in variant.run(None, {"x": rows})[0].argmax(axis=1)]
    assert served_labels(store, tmp_path, "mlp", rows) == own


def test_int8_transformer_with_its_tokenizer(tmp_path: Path) -> None:
    model = hf_transformer.transformer(tmp_path / "bert.onnx", d=64)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    # Texts that read as numbers stay texts (a CSV's "911" was made a float and refused).
    texts = ["where is my parcel", "i was charged twice", "the app crashes", "911", "NaN", "2"]
    data = tmp_path / "texts.csv"
    data.write_text("text,label\n" + "".join(f"{t},billing\n" for t in texts))
    store = LocalStore(tmp_path / "store")
    argv = ("--labels", ",".join(hf_transformer.LABELS), "--tokenizer", str(tokenizer))
    record = published(store, model, "bert", *argv, "--quantize", "int8", "--data", str(data))
    assert record["quantized_bytes"] < record["source_bytes"]
    assert record["evaluation"]["rows"] == len(texts)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    loaded = pool.load_version("bert", "1")
    answer = simple.encode(loaded.manifest, loaded.predict({"input_ids": np.array(texts, object)}))
    assert len(answer["predictions"]) == len(texts)
    code, _, err = publish(store, model, "plain", *argv, "--data", str(data))  # the card's metrics
    assert code == 0, err
    assert Registry(store).manifest("plain", "1").metrics["held_out"]["rows"] == len(texts)


def test_class_names_as_labels_without_labels_is_refused_in_one_line(tmp_path: Path) -> None:
    # docs/text.md's `--quantize int8 --data texts.csv` without --labels: a network names no
    # classes, so it was scored as a regressor and float('billing') ended in a traceback.
    model = hf_transformer.transformer(tmp_path / "bert.onnx", d=64)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    data = tmp_path / "texts.csv"
    data.write_text("text,label\nwhere is my parcel,delivery\ni was charged twice,billing\n")
    argv = ("--tokenizer", str(tokenizer), "--quantize", "int8", "--data", str(data))
    assert refused(tmp_path, model, *argv) == (
        f"--data {data}: label 'delivery' is not a number, and a model with no classes is "
        "scored as a regressor: for a classifier pass --labels, one per class"
    )


def test_refused_where_quantization_does_not_apply(tmp_path: Path) -> None:
    logistic = export("logistic", tmp_path).path  # ai.onnx.ml LinearClassifier: no MatMul
    error = refused(tmp_path, logistic, "--quantize", "int8")
    assert error.startswith("--quantize int8 does not make this model smaller (")
    assert error.endswith("publish it without --quantize")
    identity = onnx_factory.identity(tmp_path / "identity.onnx", elem=TensorProto.FLOAT)
    assert "does not make this model smaller" in refused(tmp_path, identity, "--quantize", "fp16")
    # --data alone scores the card's metrics (test_publish_card.py); a model file is no data.
    assert refused(tmp_path, identity, "--data", str(identity)).startswith(f"--data {identity}: ")
    nolabel = tmp_path / "nolabel.jsonl"
    nolabel.write_text('{"x": [1, 2, 3]}\n')
    mlp = mlp_onnx(tmp_path / "mlp.onnx")
    # With --labels: unnamed, its 10 values a row are compared, not scored, on rows without a
    # label column (test_publish_quantize_outputs.py).
    digits = ("--labels", ",".join(map(str, range(10))))
    assert refused(tmp_path, mlp, *digits, "--quantize", "int8", "--data", str(nolabel)) == (
        f"--data {nolabel}: no label column; name it with --target COLUMN (default: the first "
        "of ['label', 'target', 'y']); it has ['x']"
    )
