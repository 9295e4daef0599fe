"""Comparing two versions on one file (#17 item 4), on a directory store and on S3 (moto's
server): real scikit-learn models exported by skl2onnx with default options and published by
`aiaas publish`; every figure is checked against scikit-learn and onnxruntime run offline."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score

from functions.runtime.cache import ArtifactCache
from functions.runtime.comparison.metrics import confusion
from functions.runtime.comparison.run import CompareRequest, compare_versions, default_labels
from functions.runtime.errors import AiaasError, InvalidInput, ModelNotFound
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store, make_s3_client
from functions.runtime.store import LocalStore, ObjectStore
from infra.cli.main import main
from tests import sklearn_models
from tests.onnx_factory import identity

WINE = [f"f{i}" for i in range(sklearn_models.FEATURES)]
NONE = {"a": 0, "b": 0, "both": 0}  # rows refused by A only, B only, both


def publish(store: ObjectStore, path: Path, name: str, *extra: str) -> None:
    assert main(["--store", store.uri, "publish", str(path), "--name", name, *extra]) == 0


def pool_on(store: ObjectStore, tmp_path: Path) -> ModelPool:
    registry = Registry(store)
    return ModelPool(registry, ArtifactCache(store, tmp_path / "cache"))


@pytest.fixture(scope="module", params=["local", "s3"])
def wine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelPool, np.ndarray, np.ndarray]:
    """wine:1 logistic regression, wine:2 random forest (classes 0, 1, 2); the test split.
    Published once per store for the module (publishing is most of an S3 test's time); the
    tests read versions 1 and 2 and write only their own input keys."""
    work = tmp_path_factory.mktemp("wine")
    store: ObjectStore
    if request.param == "local":
        store = LocalStore(work / "store")
    else:
        request.getfixturevalue("moto_server")
        bucket = f"aiaas-test-{uuid.uuid4().hex[:12]}"
        make_s3_client().create_bucket(Bucket=bucket)
        store = S3Store(bucket, "registry")
    for kind in ("logistic", "forest"):
        exported = sklearn_models.export(kind, work / "onnx")
        publish(store, exported.path, "wine", "--features", ",".join(WINE))
    _, x_test, _, y_test = sklearn_models.wine_split()
    return pool_on(store, work), x_test, y_test


def offline_labels(pool: ModelPool, version: str, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(pool.load_version("wine", version).path))
    return np.asarray(session.run(["output_label"], {"X": x})[0]).astype(str)


def csv_text(x: np.ndarray, y: np.ndarray | None, label: str = "target") -> str:
    head = ",".join(WINE + ([label] if y is not None else []))
    rows = [
        ",".join([*map(str, row.tolist()), *([str(y[i])] if y is not None else [])])
        for i, row in enumerate(x)
    ]
    return head + "\n" + "\n".join(rows) + "\n"


def test_a_labelled_csv_gives_agreement_metrics_and_confusion(
    wine: tuple[ModelPool, np.ndarray, np.ndarray],
) -> None:
    pool, x, y = wine
    text = csv_text(x, y).splitlines()
    text.insert(3, ",".join(["oops"] * (len(WINE) + 1)))  # line 4: a bad row, the rest scored
    pool.registry.store.put_bytes("batch/wine/input/holdout.csv", ("\n".join(text) + "\n").encode())
    report = compare_versions(
        pool, CompareRequest("wine", "1", "2", "batch/wine/input/holdout.csv", label="target")
    )
    a, b = offline_labels(pool, "1", x), offline_labels(pool, "2", x)
    truth = y.astype(str)
    assert report["rows"] == {"compared": len(x), "failed": 1, "truncated": False, "refused": NONE}
    assert report["errors"][0]["line"] == 4 and "f0" in report["errors"][0]["reason"]
    assert report["agreement"] == {
        "rows": len(x),
        "agreed": int((a == b).sum()),
        "rate": float((a == b).mean()),
        "by": "name",
    }
    metrics = report["metrics"]
    assert metrics["rows"] == len(x) and metrics["label"] == "target"
    assert metrics["a"]["accuracy"] == pytest.approx(accuracy_score(truth, a))
    assert metrics["b"]["macro_f1"] == pytest.approx(f1_score(truth, b, average="macro"))
    assert metrics["delta"]["accuracy"] == pytest.approx(
        accuracy_score(truth, b) - accuracy_score(truth, a)
    )
    matrix = np.asarray(report["confusion"]["matrix"])
    assert report["confusion"]["labels"] == ["0", "1", "2"]
    assert matrix.sum() == len(x) and np.trace(matrix) == int((a == b).sum())
    for which in ("a", "b"):
        assert report["latency"][which]["calls"] == len(x)
        assert 0 < report["latency"][which]["p50_ms"] <= report["latency"][which]["p99_ms"]


def test_without_label_the_truth_is_found_where_publish_looks(
    wine: tuple[ModelPool, np.ndarray, np.ndarray],
) -> None:
    # A published model has no training target: a file whose truth is in `label` (publish
    # --data's default) got no metrics, "no labels in the file".
    pool, x, y = wine
    store, rows = pool.registry.store, x[:20]
    store.put_bytes("batch/wine/input/l.csv", csv_text(rows, y[:20], label="label").encode())
    jsonl = "\n".join(
        json.dumps({**dict(zip(WINE, r.tolist(), strict=True)), "target": int(t)})
        for r, t in zip(rows, y[:20], strict=True)
    )
    store.put_bytes("batch/wine/input/t.jsonl", jsonl.encode())
    truth = y[:20].astype(str)
    for key, column in (("l.csv", "label"), ("t.jsonl", "target")):
        report = compare_versions(pool, CompareRequest("wine", "1", "2", f"batch/wine/input/{key}"))
        assert report["metrics"]["label"] == column and report["metrics"]["rows"] == 20
        labels = offline_labels(pool, "1", rows)
        assert report["metrics"]["a"]["accuracy"] == pytest.approx(accuracy_score(truth, labels))
    manifest = pool.registry.manifest("wine", "1")
    scored = replace(manifest, metrics={"held_out": {"target": "cultivar"}}, features=("y", "a"))
    assert default_labels(scored) == ("cultivar", "label", "target")  # never a feature


def test_a_capture_file_is_decoded_as_predict_decoded_it(
    wine: tuple[ModelPool, np.ndarray, np.ndarray],
) -> None:
    """Simple JSON (records by feature name) and OIP requests, one line that is no request."""
    pool, x, _ = wine
    lines = []
    for i in range(0, 40, 4):
        records = [dict(zip(WINE, row.tolist(), strict=True)) for row in x[i : i + 4]]
        lines.append({"route": "predict", "request": {"instances": records}})
    for i in range(40, len(x), 5):
        rows = x[i : i + 5]
        tensor = {
            "name": "X",
            "datatype": "FP32",
            "shape": list(rows.shape),
            "data": rows.ravel().tolist(),
        }
        lines.append({"route": "infer", "request": {"inputs": [tensor]}})
    body = [
        json.dumps(
            {
                "time": "2026-11-30T00:00:00Z",
                "request_id": str(n),
                "model": "wine",
                "version": "1",
                **line,
                "response": {},
            }
        )
        for n, line in enumerate(lines)
    ]
    body.insert(2, json.dumps({"route": "predict", "request": {"instances": [{"f0": 1.0}]}}))
    key = "capture/wine/1/2026-11-30/part-0001.jsonl"
    pool.registry.store.put_bytes(key, ("\n".join(body) + "\n").encode())
    report = compare_versions(pool, CompareRequest("wine", "1", "2", key))
    a, b = offline_labels(pool, "1", x), offline_labels(pool, "2", x)
    assert report["format"] == "capture" and report["rows"]["compared"] == len(x)
    assert report["errors"] == [{"line": 3, "reason": report["errors"][0]["reason"]}]
    assert "missing feature 'f1'" in report["errors"][0]["reason"]
    assert report["agreement"]["agreed"] == int((a == b).sum())
    assert report["metrics"] is None  # captures hold no ground truth
    assert report["latency"]["a"]["calls"] == len(lines)  # one timed call per request as sent


def test_regressors_give_differences_and_error_metrics(store: ObjectStore, tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    x = x.astype(np.float32)
    for model in (LinearRegression(), Ridge(alpha=1.0)):
        path = tmp_path / f"{type(model).__name__}.onnx"
        path.write_bytes(to_onnx(model.fit(x[:300], y[:300]), x[:1]).SerializeToString())
        publish(store, path, "diabetes")
    pool = pool_on(store, tmp_path)
    rows = [{"X": row.tolist(), "y": float(t)} for row, t in zip(x[300:], y[300:], strict=True)]
    pool.registry.store.put_bytes(
        "batch/diabetes/input/held.jsonl", "\n".join(map(json.dumps, rows)).encode()
    )
    report = compare_versions(
        pool, CompareRequest("diabetes", "1", "2", "batch/diabetes/input/held.jsonl", label="y")
    )
    preds = [
        ort.InferenceSession(str(pool.load_version("diabetes", v).path))
        .run(None, {"X": x[300:]})[0]
        .reshape(-1)
        .astype(np.float64)
        for v in ("1", "2")
    ]
    assert report["task"] == "regression" and report["agreement"] is None
    assert report["max_abs_diff"] == pytest.approx(np.abs(preds[0] - preds[1]).max(), rel=1e-9)
    found = report["metrics"]
    assert found["a"]["mae"] == pytest.approx(mean_absolute_error(y[300:], preds[0]), rel=1e-6)
    assert found["b"]["r2"] == pytest.approx(r2_score(y[300:], preds[1]), rel=1e-6)
    assert found["delta"]["rmse"] == pytest.approx(found["b"]["rmse"] - found["a"]["rmse"])
    assert len(report["points"]["a"]) == len(rows) and report["points"]["truth"][0] == y[300]


def test_bad_input_gets_one_clear_error(
    wine: tuple[ModelPool, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    pool, x, _ = wine
    store = pool.registry.store

    def refused(request: CompareRequest) -> AiaasError:
        with pytest.raises(AiaasError) as caught:
            compare_versions(pool, request)
        assert "\n" not in caught.value.message
        return caught.value

    assert isinstance(refused(CompareRequest("wine", "1", "9", "k")), ModelNotFound)
    store.put_bytes("batch/wine/input/bad.csv", b"f0,f1\n1,2\n")
    assert (
        "lacks column(s) f2"
        in refused(CompareRequest("wine", "1", "2", "batch/wine/input/bad.csv")).message
    )
    store.put_bytes("batch/wine/input/junk.csv", csv_text(x[:0], None).encode() + b"a,b\nc,d\n")
    empty = refused(CompareRequest("wine", "1", "2", "batch/wine/input/junk.csv"))
    assert isinstance(empty, InvalidInput) and "no row could be compared (2 bad)" in empty.message
    store.put_bytes("batch/wine/input/ok.csv", csv_text(x[:5], None).encode())
    missing = refused(CompareRequest("wine", "1", "2", "batch/wine/input/ok.csv", label="target"))
    assert missing.message.startswith("batch/wine/input/ok.csv: no column 'target'")
    other = identity(tmp_path / "identity.onnx", shape=["N", 4])
    publish(store, other, "wine")
    assert (
        "read different inputs"
        in refused(CompareRequest("wine", "1", "3", "batch/wine/input/ok.csv")).message
    )


def test_zipmap_probabilities_are_compared_as_the_numbers_they_are(
    wine: tuple[ModelPool, np.ndarray, np.ndarray],
) -> None:
    """skl2onnx's default classifier output (a ZipMap) is one probability per class: its
    differences were left out, and two versions disagreeing on labels reported "max |B-A| 0"."""
    pool, x, _ = wine
    pool.registry.store.put_bytes("batch/wine/input/x.csv", csv_text(x, None).encode())
    report = compare_versions(pool, CompareRequest("wine", "1", "2", "batch/wine/input/x.csv"))

    def probabilities(version: str) -> np.ndarray:
        session = ort.InferenceSession(str(pool.load_version("wine", version).path))
        maps = session.run(["output_probability"], {"X": x})[0]
        return np.array([[row[k] for k in sorted(row)] for row in maps], dtype=np.float64)

    a, b = probabilities("1"), probabilities("2")
    diff = np.abs(b - a)
    assert report["max_abs_diff"] == pytest.approx(diff.max(), rel=1e-6)
    assert report["max_rel_diff"] == pytest.approx((diff / np.maximum(a, 1e-12)).max(), rel=1e-5)


def test_the_confusion_matrix_keeps_the_models_class_order() -> None:
    # Sorted as text ("eight", "five", "four", ...), where the card's matrix of the same model
    # reads "zero", "one", "two", ...; labels the model does not name come after, sorted.
    a = np.array(["one", "eight", "two", "one"])
    b = np.array(["eight", "eight", "two", "other"])
    found = confusion(a, b, order=("zero", "one", "two", "eight"))
    assert found["labels"] == ["one", "two", "eight", "other"]
    assert found["matrix"] == [[0, 0, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_labels_of_a_class_neither_version_knows_are_counted_and_said(
    wine: tuple[ModelPool, np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    # New data with a class the models were never trained on ('nebbiolo', a cultivar added to
    # the file after training): each of its rows is an error for both versions, which the
    # metrics showed as a lower macro F1 and nothing else.
    pool, x, y = wine
    truth = y.astype(str).astype(object)
    truth[:3] = "nebbiolo"
    key = "batch/wine/input/new-class.csv"
    pool.registry.store.put_bytes(key, csv_text(x, truth).encode())
    report = compare_versions(pool, CompareRequest("wine", "1", "2", key, label="target"))
    assert report["metrics"]["unknown_labels"] == {"nebbiolo": 3}
    assert (
        main(["--store", pool.registry.store.uri, "compare", "wine", "1", "2", "--data", key]) == 0
    )
    assert (
        f"  3 of {len(x)} labelled rows hold a class neither version was trained on "
        "('nebbiolo': 3): each is an error for both; retrain with it to predict it\n"
    ) in capsys.readouterr().out
