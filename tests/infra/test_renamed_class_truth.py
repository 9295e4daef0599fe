"""A scikit-learn classifier fitted on y = 1, 2, 3, published with `--labels low,mid,high`,
scored on a held-out file of scikit-learn's own y.

`publish --data` read a file of 1s and 2s as class indices (the second and third classes): the
card said accuracy 0.0185 where scikit-learn's own score on those rows was 0.944; a file holding
a 3 as well was refused as holding no class of the model's. `aiaas compare` of such a version
said accuracy 0 for the full file. The graph's own classes (skl2onnx writes them into it: a
ZipMap's keys, else recorded at publish as `extras.graph_classes`) are now read before indices,
so both say scikit-learn's score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from functions.runtime.store import LocalStore
from tests.cli_run import run

LABELS = "low,mid,high"


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, np.ndarray, np.ndarray]:
    """(folder, the fitted pipeline, held-out rows, their y of 1, 2, 3)."""
    root = tmp_path_factory.mktemp("renamed")
    x, y = load_wine(return_X_y=True)
    x = x.astype(np.float32)
    order = np.random.default_rng(3).permutation(len(x))
    x, y = x[order], y[order] + 1
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000))
    model.fit(x[:100], y[:100])
    (root / "zipmap.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())
    options = {id(model.steps[-1][1]): {"zipmap": False}}
    (root / "tensor.onnx").write_bytes(to_onnx(model, x[:1], options=options).SerializeToString())
    return root, model, x[100:], y[100:]


def held(path: Path, x: np.ndarray, y: np.ndarray) -> Path:
    rows = [
        ",".join(f"{v!r}" for v in row) + f",{label}"
        for row, label in zip(x.tolist(), y, strict=True)
    ]
    header = ",".join(f"X_{i}" for i in range(x.shape[1])) + ",label"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize("export", ["zipmap", "tensor"])
@pytest.mark.parametrize("classes", [(1, 2), (1, 2, 3)])
def test_publish_data_scores_sklearns_y_as_sklearn_does(
    tmp_path: Path,
    fitted: tuple[Path, object, np.ndarray, np.ndarray],
    export: str,
    classes: tuple[int, ...],
) -> None:
    root, model, x, y = fitted
    kept = np.isin(y, classes)
    data = held(tmp_path / "held.csv", x[kept], y[kept])
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(root / f"{export}.onnx"), "--name", "w",
                       "--labels", LABELS, "--data", str(data))  # fmt: skip
    assert code == 0, err
    manifest = json.loads(store.get_bytes("models/w/versions/1/manifest.json"))
    accuracy = model.score(x[kept], y[kept])  # type: ignore[attr-defined]
    assert accuracy > 0.9
    assert manifest["metrics"]["held_out"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)


@pytest.mark.parametrize("export", ["zipmap", "tensor"])
def test_compare_scores_sklearns_y_as_sklearn_does(
    tmp_path: Path, fitted: tuple[Path, object, np.ndarray, np.ndarray], export: str
) -> None:
    root, model, x, y = fitted
    store = LocalStore(tmp_path / "store")
    code, _, err = run(store, "publish", str(root / f"{export}.onnx"), "--name", "w", "--labels",
                       LABELS)  # fmt: skip
    assert code == 0, err
    accuracy = model.score(x, y)  # type: ignore[attr-defined]
    code, out, err = run(store, "compare", "w", "1", "1", "--data",
                         str(held(tmp_path / "held.csv", x, y)), "--json")  # fmt: skip
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["unknown_labels"] == {}, metrics
    for side in ("a", "b"):
        assert metrics[side]["accuracy"] == pytest.approx(accuracy), metrics
