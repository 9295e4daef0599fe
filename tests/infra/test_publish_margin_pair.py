"""A binary classifier's raw scores as skl2onnx writes them, [-m, m] a row, published and served.

With `raw_scores: True` a GradientBoostingClassifier (and a LogisticRegression) of two classes
answers its margin m negated beside itself. Publish refused it as margins and advised
`--activation softmax`, which serves softmax([-m, m]) = sigmoid(2m): 0.6473 where predict_proba
says 0.5753, 0.15 off at worst over the held-out rows. An element-wise sigmoid gives
[1 - sigmoid(m), sigmoid(m)], predict_proba itself: publish now advises it, and refuses a
softmax asked for such a pair.

The real CLI publishes; `aiaas serve` answers over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import ServeProcess, start_serve

ESTIMATORS = {
    "gb": lambda: GradientBoostingClassifier(n_estimators=30, random_state=0),
    "lr": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
}


@dataclass(frozen=True)
class Raw:
    path: Path
    estimator: Any
    x_test: np.ndarray


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Raw]:
    root = tmp_path_factory.mktemp("margins")
    x, y = load_breast_cancer(return_X_y=True)
    x_train, x_test, y_train, _ = train_test_split(
        x.astype(np.float32), y, test_size=0.3, random_state=0
    )
    out = {}
    for name, make in ESTIMATORS.items():
        estimator = make().fit(x_train, y_train)
        last = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        options = {id(last): {"raw_scores": True, "zipmap": False}}
        path = root / f"{name}.onnx"
        path.write_bytes(to_onnx(estimator, x_train[:1], options=options).SerializeToString())
        out[name] = Raw(path, estimator, x_test)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> LocalStore:
    return LocalStore(tmp_path_factory.mktemp("margin-store") / "store")


@pytest.fixture(scope="module")
def server(store: LocalStore, exported: dict[str, Raw]) -> Iterator[ServeProcess]:
    for name, raw in exported.items():
        argv = ["publish", str(raw.path), "--name", name, "--activation", "sigmoid"]
        assert main(["--store", store.uri, *argv]) == 0
    yield from start_serve(store.root)


@pytest.mark.parametrize("name", ["gb", "lr"])
def test_served_sigmoid_is_predict_proba(
    name: str, exported: dict[str, Raw], server: ServeProcess
) -> None:
    raw = exported[name]
    with httpx.Client(base_url=server.base, timeout=30) as http:
        answer = http.post(f"/models/{name}/predict?top_k=2", json={"inputs": raw.x_test.tolist()})
    assert answer.status_code == 200, answer.text
    served = np.array(
        [
            [next(c["score"] for c in row["top_k"] if c["label"] == k) for k in ("0", "1")]
            for row in answer.json()["predictions"]
        ]
    )
    expected = raw.estimator.predict_proba(raw.x_test)
    assert np.abs(served - expected).max() <= 1e-6
    labels = [row["label"] for row in answer.json()["predictions"]]
    assert labels == [str(c) for c in raw.estimator.predict(raw.x_test)]


def test_publish_advises_a_sigmoid_for_the_pair(
    exported: dict[str, Raw], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    argv = ["--store", store.uri, "publish", str(exported["gb"].path), "--name", "gb"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("aiaas publish: error: output 'probabilities' answered ")
    assert "each row is [-m, m], one binary margin negated (e.g. [" in err
    assert err.endswith(
        "as skl2onnx writes a binary classifier's raw scores): pass --activation sigmoid to "
        "serve probabilities (sigmoid(m), as predict_proba gives; a softmax would give "
        "sigmoid(2m)), or --activation none to serve these scores as they are"
    )


@pytest.mark.parametrize("name", ["gb", "lr"])
def test_a_softmax_asked_for_the_pair_is_refused(
    name: str, exported: dict[str, Raw], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    argv = ["publish", str(exported[name].path), "--name", name, "--activation", "softmax"]
    assert main(["--store", store.uri, *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "aiaas publish: error: --activation softmax: output 'probabilities' answers each "
        "made-up row as [-m, m], one binary margin negated (e.g. ["
    )
    assert err.endswith(
        "a softmax of it is sigmoid(2m), not the probability sigmoid(m) a logistic model's "
        "predict_proba gives (GradientBoostingClassifier, LogisticRegression); pass "
        "--activation sigmoid to serve probabilities, or --activation none to serve these "
        "scores as they are"
    )
    assert not (store.root / "models" / name).exists()
