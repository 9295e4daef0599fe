"""scikit-learn models whose skl2onnx export (default options) declares outputs it does not
answer, or answers its classes' columns in another order: publish runs the graph on made-up
rows (functions/runtime/probe_outputs.py) and serves what it answers.

- binary RidgeClassifier: `probabilities` declared [N, 2], one decision value a row answered:
  it was served as two probabilities cut at 0.5 (labels wrong), and batch wrote a CSV whose
  header had one more column than its rows;
- binary SVC(): onnxruntime answers the decision columns as [d, -d], d > 0 for class 1: every
  label served was the other class;
- multi-output RandomForestRegressor: `variable` declared [N, 1], one column a target answered:
  the batch CSV had one `pred_variable` column and three values a row.

Each is published with the real CLI, scored through the real predict handler (API Gateway
v2.0 events) and `aiaas batch`, and compared with scikit-learn's own predict.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, RidgeClassifier
from sklearn.svm import SVC, LinearSVC

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_publish_binary_scores import _predict


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x.astype(np.float32), y


def _export(model: object, x: np.ndarray, path: Path) -> Path:
    path.write_bytes(to_onnx(model, x[:1]).SerializeToString())
    return path


def _publish(store: LocalStore, path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["--store", store.uri, "publish", str(path), "--name", name])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _published(
    model: object, x: np.ndarray, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[LocalStore, str]:
    """`model` exported by skl2onnx (defaults) and published as `name` with the real CLI, into
    the test's own store; the store and what publish printed."""
    store = LocalStore(tmp_path / "store")
    return store, _publish(store, _export(model, x, tmp_path / f"{name}.onnx"), name, capsys)


def _batch_csv(store: LocalStore, tmp_path: Path, name: str, x: np.ndarray) -> pd.DataFrame:
    """`aiaas batch` of the rows as a CSV with X_0, X_1, ... columns, read back as a frame."""
    frame = pd.DataFrame(x, columns=[f"X_{i}" for i in range(x.shape[1])])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["--store", store.uri, "batch", name, str(tmp_path / "rows.csv")]) == 0
    written = store.root / f"batch/{name}/output/rows.csv"
    header = written.read_text().splitlines()[0].split(",")
    widths = {len(line.split(",")) for line in written.read_text().splitlines()}
    assert widths == {len(header)}, "a row has another number of values than the header"
    return pd.read_csv(written, dtype={"pred_label": str})


@pytest.mark.filterwarnings("ignore:Attribute `prob:FutureWarning")  # skl2onnx reads probA_
def test_binary_svc_labels_follow_its_reversed_columns(
    tmp_path: Path, cancer: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = cancer
    svc = SVC().fit(x, y)
    store, out = _published(svc, x, "svc", tmp_path, capsys)
    assert "in reverse order" in out and "its columns are 1, 0" in out
    assert Registry(store).manifest("svc", "1").labels == ("1", "0")
    rows = x[::7]
    expected = [str(label) for label in svc.predict(rows)]
    assert len(set(expected)) == 2
    served = _predict(store, tmp_path, "svc", rows)
    assert [p["label"] for p in served] == expected
    # the score of the label answered is sklearn's decision value for it: |d|
    decision = np.abs(svc.decision_function(rows))
    np.testing.assert_allclose([p["score"] for p in served], decision, rtol=1e-4, atol=1e-4)
    assert _batch_csv(store, tmp_path, "svc", rows)["pred_label"].tolist() == expected


def test_binary_ridge_classifier_one_decision_value(
    tmp_path: Path, cancer: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = cancer
    ridge = RidgeClassifier().fit(x, y)
    store, out = _published(ridge, x, "ridge", tmp_path, capsys)
    assert "activation sigmoid" in out
    manifest = Registry(store).manifest("ridge", "1")
    assert {o.name: o.shape for o in manifest.outputs}["probabilities"] == (-1, 1)
    decision = ridge.decision_function(x)
    # the rows a cut at 0.5 answered wrongly: 0 < d < 0.5 is class 1
    near = x[(decision > 0) & (decision < 0.5)]
    assert len(near) >= 3
    rows = np.concatenate([near, x[::9]])
    expected = [str(label) for label in ridge.predict(rows)]
    served = _predict(store, tmp_path, "ridge", rows)
    assert [p["label"] for p in served] == expected
    assert all(0.5 <= p["score"] <= 1.0 for p in served)
    scored = _batch_csv(store, tmp_path, "ridge", rows)
    assert scored["pred_label"].tolist() == expected
    np.testing.assert_allclose(
        scored["pred_probabilities"], ridge.decision_function(rows), rtol=1e-4, atol=1e-4
    )


def test_multi_output_forest_answers_a_column_per_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 5)).astype(np.float32)
    y = np.stack([x[:, 0] * 3, x[:, 1] - x[:, 2], x[:, 3] + 10], axis=1)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, y)
    store, _ = _published(forest, x, "forest", tmp_path, capsys)
    manifest = Registry(store).manifest("forest", "1")
    assert manifest.task == "regression"
    assert manifest.outputs[0].shape == (-1, 3)
    scored = _batch_csv(store, tmp_path, "forest", x[:10])
    columns = [f"pred_{manifest.outputs[0].name}_{i}" for i in range(3)]
    np.testing.assert_allclose(scored[columns], forest.predict(x[:10]), rtol=1e-5, atol=1e-4)


def test_declared_shapes_that_hold_are_kept(
    tmp_path: Path, cancer: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    """A binary LinearSVC declares [N, 1] and answers it; a multi-output LinearRegression
    declares [N, 3] and answers it: nothing changes, no note."""
    x, y = cancer
    store = LocalStore(tmp_path / "store")
    out = _publish(store, _export(LinearSVC().fit(x, y), x, tmp_path / "l.onnx"), "l", capsys)
    assert "reverse order" not in out
    assert {o.name: o.shape for o in Registry(store).manifest("l", "1").outputs} == {
        "label": (-1,),
        "probabilities": (-1, 1),
    }
    targets = np.stack([x[:, 0], x[:, 1], x[:, 2]], axis=1)
    linear = _export(LinearRegression().fit(x[:, 3:8], targets), x[:, 3:8], tmp_path / "r.onnx")
    _publish(store, linear, "r", capsys)
    assert Registry(store).manifest("r", "1").outputs[0].shape == (-1, 3)


def test_calibrated_probabilities_are_not_called_decision_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CalibratedClassifierCV's Platt sigmoid is written as Mul, Exp, Add, Div over a
    LinearClassifier's decision values: its answers are probabilities, and publish said
    "decision values, not probabilities"."""
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = CalibratedClassifierCV(LinearSVC(), cv=3).fit(x, y)
    store, out = _published(model, x, "cal", tmp_path, capsys)
    assert "decision values" not in out
    served = _predict(store, tmp_path, "cal", x[::10])
    proba = model.predict_proba(x[::10])
    np.testing.assert_allclose([p["score"] for p in served], proba.max(axis=1), atol=1e-4)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # SVC(probability=True), deprecated in 1.9
def test_platt_scaled_svc_is_said_to_differ_from_its_own_label(
    tmp_path: Path, cancer: tuple[np.ndarray, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = cancer
    svc = SVC(probability=True, random_state=0).fit(x, y)
    store, out = _published(svc, x, "svc", tmp_path, capsys)
    assert "Platt-scaled probabilities" in out and "'output_label'" in out
    assert Registry(store).manifest("svc", "1").labels == ("0", "1")  # columns as classes


def test_labels_for_a_regressor_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x = np.random.default_rng(1).standard_normal((50, 4)).astype(np.float32)
    path = _export(LinearRegression().fit(x, x[:, 0] * 2), x, tmp_path / "lin.onnx")
    store = LocalStore(tmp_path / "store")
    assert main(["--store", store.uri, "publish", str(path), "--name", "lin", "--labels", "a,b"])
    err = capsys.readouterr().err
    assert "comes from a regressor operator" in err and "--task classification" in err
    assert not Registry(store).models()


def test_a_version_published_with_the_declared_width_fails_batch_saying_to_publish_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version published before publish read the answered widths keeps [N, 1] in its
    manifest for three columns answered: its batch CSV had one header column over three values
    a row. The run fails instead, saying what to do."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, x[:, :3])
    path = _export(forest, x, tmp_path / "forest.onnx")
    manifest = onnx_factory.manifest_for(path, "forest", "1")
    old = replace(manifest, outputs=(replace(manifest.outputs[0], shape=(-1, 1)),))
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(old, path)
    pd.DataFrame(x[:4], columns=[f"X_{i}" for i in range(5)]).to_csv(
        tmp_path / "r.csv", index=False
    )
    assert main(["--store", store.uri, "batch", "forest", str(tmp_path / "r.csv")]) == 1
    err = capsys.readouterr().err
    assert "output 'variable' answers [3] a row where its manifest says [1]" in err
    assert "publish the model again" in err
    assert not store.exists("batch/forest/output/r.csv")


def test_a_forest_whose_probabilities_round_past_one_publishes_and_serves_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """onnxruntime sums a forest's float32 leaf shares: where every tree agrees a row scores
    1.0000001. Publish took that for a margin ("answered 1 ... outside [0, 1]"), refused an
    ordinary forest depending on its trees, and advised a softmax over real probabilities."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, y)
    path = tmp_path / "rf.onnx"
    path.write_bytes(to_onnx(forest, x[:1], options={"zipmap": False}).SerializeToString())
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(path), "--name", "rf"]
    assert main([*argv, "--labels", "setosa,versicolor,virginica"]) == 0, capsys.readouterr().err
    answers = _predict(store, tmp_path, "rf", x[:40])
    expected = forest.predict_proba(x[:40])
    names = np.array(["setosa", "versicolor", "virginica"])
    assert [a["label"] for a in answers] == names[expected.argmax(axis=1)].tolist()
    np.testing.assert_allclose([a["score"] for a in answers], expected.max(axis=1), atol=1e-5)
