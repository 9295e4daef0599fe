"""`aiaas publish` as a base install runs it: without the onnx package (README "Install":
`pip install 'aiaas[aws,control]'`), so nothing is read from the graph (hunt_deploy.md #5).

A scikit-learn classifier exported as the README recommends (zipmap False) and published with
--labels, as the README's first example does, was served with a second softmax over its
probabilities: 0.57 for 0.98, after a publish that exited 0. Now the activation is what the
scores answered made-up rows says, or --activation is asked for where they say nothing.

The publish runs in a child process whose only difference from this venv is the one a base
install has: `onnx` cannot be imported (a `sitecustomize` on its PYTHONPATH makes the import
fail as a missing package does). Its answers come from the real predict function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_publish_activation_shapes import ENDINGS, ROWS, _model

REPO = Path(__file__).resolve().parents[2]

NO_ONNX = '''
import importlib.abc, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    """As in a base install: no onnx package to import."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "onnx":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
'''


def publish_without_onnx(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`aiaas --store ROOT/store publish ARGV` in a process that cannot import onnx."""
    guard = root / "no_onnx"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(NO_ONNX)
    env = os.environ | {"PYTHONPATH": f"{guard}{os.pathsep}{REPO}"}
    command = [sys.executable, "-m", "infra.cli.main", "--store", str(root / "store"), "publish"]
    return subprocess.run(
        [*command, *argv], capture_output=True, text=True, env=env, cwd=root, timeout=120
    )


def served(root: Path, name: str, rows: np.ndarray) -> list[dict[str, Any]]:
    """The predictions the predict function answers for `rows`, through its HTTP API event."""
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": name}, pool)
    body = json.dumps({"inputs": rows.tolist()})
    response = service.handle(http_event("POST", f"/models/{name}/predict", body))
    assert response["statusCode"] == 200, response["body"]
    return body_of(response)["predictions"]  # type: ignore[no-any-return]


def test_the_readme_s_first_publish_serves_the_model_s_probabilities(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(x, y)
    proto = to_onnx(model, x[:1], options={id(model): {"zipmap": False}})
    (tmp_path / "model.onnx").write_bytes(proto.SerializeToString())
    labels = "setosa,versicolor,virginica"
    argv = ("model.onnx", "--name", "iris", "--labels", labels, "--alias", "production")
    result = publish_without_onnx(tmp_path, *argv)
    assert result.returncode == 0, result.stderr
    assert "  class scores from output 'probabilities' (activation none)" in result.stdout
    assert (
        "  the onnx package is not installed, so nothing was read from the graph: "
        "'probabilities' answered made-up rows with probabilities (within [0, 1], each row "
        "summing to 1), so its activation is none (--activation overrides; pip install onnx to "
        "read the graph)"
    ) in result.stdout
    rows = x[[0, 60, 120]]
    answers = served(tmp_path, "iris", rows)
    expected = model.predict_proba(rows)
    assert [a["label"] for a in answers] == ["setosa", "versicolor", "virginica"]
    np.testing.assert_allclose([a["score"] for a in answers], expected.max(axis=1), rtol=1e-4)
    assert answers[0]["score"] > 0.95  # 0.57 with the second softmax


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_scores_endings_get_the_activation_their_answers_show(tmp_path: Path, ending: str) -> None:
    """The endings a user's own network has (tests/infra/test_publish_activation_shapes.py),
    served as the model means with the graph unread too."""
    nodes, shape, probabilities, labels = ENDINGS[ending]
    _model(tmp_path / "m.onnx", nodes, shape)
    result = publish_without_onnx(tmp_path, "m.onnx", "--name", "m", "--labels", labels)
    assert result.returncode == 0, result.stderr
    activation = "sigmoid" if ending == "rank1" else "none"
    assert f"class scores from output 'out' (activation {activation})" in result.stdout
    answers = served(tmp_path, "m", ROWS)
    if probabilities.ndim == 1:  # one score a row: the positive class's probability
        probabilities = np.stack([1 - probabilities, probabilities], axis=1)
    names = labels.split(",")
    assert [a["label"] for a in answers] == [names[i] for i in probabilities.argmax(axis=1)]
    np.testing.assert_allclose([a["score"] for a in answers], probabilities.max(axis=1), rtol=1e-5)


def test_a_network_s_logits_still_get_a_softmax(tmp_path: Path) -> None:
    onnx_factory.linear_classifier(tmp_path / "m.onnx", bias=0.3)
    result = publish_without_onnx(tmp_path, "m.onnx", "--name", "m", "--labels", "a,b,c")
    assert result.returncode == 0, result.stderr
    assert "class scores from output 'logits' (activation softmax)" in result.stdout
    assert "'logits' answered made-up rows with scores outside [0, 1]" in result.stdout
    rows = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    answers = served(tmp_path, "m", rows)
    scores = [a["score"] for a in answers]
    assert all(0 < s < 1 for s in scores) and len(set(scores)) > 1


def _sigmoids(path: Path) -> Path:
    """One sigmoid a class (a multi-label head): within [0, 1], rows not summing to 1."""
    graph = helper.make_graph(
        [helper.make_node("Sigmoid", ["x"], ["out"])],
        "sigmoids",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
    )
    return onnx_factory.save(graph, path)


def _one_row_only(path: Path) -> Path:
    """Declares a batch of any size, and refuses more than one row (a Reshape to [1, 3])."""
    shape = numpy_helper.from_array(np.array([1, 3], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["out"])],
        "one_row",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3])],
        initializer=[shape],
    )
    return onnx_factory.save(graph, path)


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (
            _sigmoids,
            "'out' answered made-up rows with scores within [0, 1] whose rows do not sum to 1 "
            "(one sigmoid a class?)",
        ),
        (_one_row_only, "the graph refused made-up rows, so nothing says what it answers"),
    ],
    ids=["sigmoids", "refused"],
)
def test_labels_without_activation_are_refused_where_the_answers_cannot_tell(
    tmp_path: Path, build: Any, why: str
) -> None:
    build(tmp_path / "m.onnx")
    result = publish_without_onnx(tmp_path, "m.onnx", "--name", "m", "--labels", "a,b,c")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == (
        "aiaas publish: error: the onnx package is not installed, so nothing was read from the "
        f"graph, and {why}: say what 'out' holds with --activation none (probabilities), "
        "softmax (logits) or sigmoid (one logit a class), or pip install onnx"
    )
    assert not list((tmp_path / "store").rglob("manifest.json"))  # nothing published
    argv = ("m.onnx", "--name", "m", "--labels", "a,b,c", "--activation", "none")
    again = publish_without_onnx(tmp_path, *argv)
    assert again.returncode == 0, again.stderr
    assert "class scores from output 'out' (activation none)" in again.stdout
