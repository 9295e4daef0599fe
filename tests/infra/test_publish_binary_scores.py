"""Binary classifiers whose scores output has one column: the positive class.

- scikit-learn's LinearSVC (RidgeClassifier, SGDClassifier, ... alike), exported by skl2onnx with
  its defaults, gives a label output and "probabilities" [N, 1] holding the decision value. It
  was served with activation none, one column for two classes: every row's label was "0",
  whatever the model said (362 of breast cancer's 569 rows wrong, also in batch).
- A torch network trained with BCEWithLogitsLoss exports one logit [N, 1]; `--labels no,yes`
  was refused ('lists 2 labels but the model has 1 classes') even with `--activation sigmoid`,
  which the runtime serves. With a final Sigmoid the one column is already the probability.

Each is published with the real CLI and scored through the real predict handler (API Gateway
v2.0 events) and `aiaas batch`; labels equal the model's own (sklearn's predict, the sign of the
logit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_breast_cancer
from sklearn.svm import LinearSVC

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.functions.test_predict_events import body_of, http_event


def _publish(store: LocalStore, path: Path, name: str, *options: str) -> tuple[int, str]:
    code = main(["--store", store.uri, "publish", str(path), "--name", name, *options])
    manifest = Registry(store).manifest(name, "1") if code == 0 else None
    post = manifest.postprocessing if manifest else None
    return code, post.activation if post else ""


def _predict(store: LocalStore, root: Path, name: str, rows: np.ndarray) -> list[dict[str, Any]]:
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service: PredictService = service_from_env({"AIAAS_MODEL": name}, pool)
    body = json.dumps({"inputs": rows.tolist()})
    response = service.handle(http_event("POST", f"/models/{name}/predict", body))
    assert response["statusCode"] == 200, response["body"]
    return body_of(response)["predictions"]  # type: ignore[no-any-return]


def test_linear_svc_labels_are_the_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    svc = LinearSVC().fit(x, y)
    (tmp_path / "svc.onnx").write_bytes(to_onnx(svc, x[:1]).SerializeToString())
    store = LocalStore(tmp_path / "store")
    assert _publish(store, tmp_path / "svc.onnx", "svc") == (0, "sigmoid")
    expected = [str(label) for label in svc.predict(x)]
    assert len(set(expected)) == 2
    served = _predict(store, tmp_path, "svc", x)
    assert [p["label"] for p in served] == expected
    frame = pd.DataFrame(x, columns=[f"X_{i}" for i in range(x.shape[1])])
    frame.to_csv(tmp_path / "rows.csv", index=False)
    assert main(["--store", store.uri, "batch", "svc", str(tmp_path / "rows.csv")]) == 0
    capsys.readouterr()
    scored = pd.read_csv(store.root / "batch/svc/output/rows.csv", dtype={"pred_label": str})
    assert scored["pred_label"].tolist() == expected


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """{final sigmoid?: the ONNX file torch.onnx.export wrote} for one linear layer."""
    torch = pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("nets")
    layer = torch.nn.Linear(3, 1)
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, -1.0, 0.5]])
        layer.bias[:] = 0.0
    paths = {}
    for final_sigmoid in (False, True):
        model = torch.nn.Sequential(layer, torch.nn.Sigmoid()) if final_sigmoid else layer
        paths[final_sigmoid] = root / f"net-{final_sigmoid}.onnx"
        batch = {"x": {0: "n"}, "y": {0: "n"}}
        sample = (torch.zeros(2, 3),)
        torch.onnx.export(
            model,
            sample,
            paths[final_sigmoid],
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=batch,
        )
    return paths


@pytest.mark.parametrize(("final_sigmoid", "activation"), [(False, "sigmoid"), (True, "none")])
def test_one_logit_network_takes_two_labels(
    tmp_path: Path, nets: dict[bool, Path], final_sigmoid: bool, activation: str
) -> None:
    store = LocalStore(tmp_path / "store")
    assert _publish(store, nets[final_sigmoid], "net", "--labels", "no,yes") == (0, activation)
    rows = np.array([[2.0, 0, 0], [-2.0, 0, 0], [0.1, 0, 0]], dtype=np.float32)
    served = _predict(store, tmp_path, "net", rows)
    assert [p["label"] for p in served] == ["yes", "no", "yes"]
    np.testing.assert_allclose([p["score"] for p in served], [0.8808, 0.8808, 0.525], atol=1e-3)


def test_softmax_over_one_logit_is_refused(
    tmp_path: Path, nets: dict[bool, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = LocalStore(tmp_path / "store")
    argv = ["--labels", "no,yes", "--activation", "softmax"]
    assert _publish(store, nets[False], "net", *argv)[0] != 0
    assert "--activation sigmoid" in capsys.readouterr().err
