"""Backgrounds a model cannot be explained against, and the one input shape explanations left out.

- `aiaas baseline` of float32 rows near the type's limit (3e38: in range) stored, for good, a
  background the model's output overflows on: every explanation after was a 500 blaming the
  model. It is now refused before anything is written, quoting a row.
- A background.json edited by hand (a store handed over as a tarball) with weights summing to
  0 was a 500 blaming the model, and with weights of 1e308 (summed to infinity, every weight
  0) a 200 with `"base_value": [0.0]`. Weights are now each finite and 0 or more, one above 0,
  in proportion however large; anything else names the file.
- A model whose only input is one number a row ([N]) was refused by explain and baseline with
  a message listing [-1] as a shape they take; it is now one column, as beside other inputs.

Real parts: onnx.helper and skl2onnx models, the CLI's publish and baseline, and a real `aiaas
serve` over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.runtime.drift.baseline import BASELINE_FILE
from functions.runtime.explain.background import BACKGROUND_FILE
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from tests.cli_run import run
from tests.infra.test_serve import start_serve

FEATURES = "f0,f1,f2,f3"
WEIGHTS = np.array([1.0, 2.0, -1.0, 0.5])


def _linear(root: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    path = root / "linreg.onnx"
    path.write_bytes(to_onnx(LinearRegression().fit(x, x @ WEIGHTS), x[:1]).SerializeToString())
    return path


def _doubler(root: Path) -> Path:
    """y = 2 x, x one float a row: input [N], output [N]."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"])],
        "doubler",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = root / "doubler.onnx"
    onnx.save(model, path)
    return path


def _reweighted(store: LocalStore, name: str, weights: list[float]) -> None:
    """The background.json of `name`:1 edited by hand, as a store handed over could be."""
    path = store.root / version_prefix(name, "1") / BACKGROUND_FILE
    doc = json.loads(path.read_text())
    doc["weights"] = [weights[i % len(weights)] for i in range(len(doc["rows"]))]
    path.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LocalStore]]:
    root = tmp_path_factory.mktemp("background-edges")
    store = LocalStore(root / "store")
    train = root / "train.csv"
    rows = np.random.default_rng(1).normal(size=(40, 4))
    train.write_text(FEATURES + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    for name in ("huge", "zero", "edge"):
        code, _, err = run(store, "publish", str(_linear(root)), "--name", name, "--features", FEATURES)  # fmt: skip
        assert code == 0, err
    for name in ("huge", "zero"):
        assert run(store, "baseline", name, str(train))[0] == 0
    _reweighted(store, "huge", [1e308, 1e308])
    _reweighted(store, "zero", [0.0])
    assert run(store, "publish", str(_doubler(root)), "--name", "doubler")[0] == 0
    for server in start_serve(store.root):
        yield server.base, store


def test_baseline_refuses_a_background_the_model_cannot_score(
    served: tuple[str, LocalStore], tmp_path: Path
) -> None:
    base, store = served
    edge = tmp_path / "f32edge.csv"
    # each value is in float32's range; 3e38 + 2 x 3e38 is not
    edge.write_text(f"{FEATURES}\n3e38,3e38,3,4\n-3e38,-3e38,3,4\n3e38,3e38,5,6\n")
    code, out, err = run(store, "baseline", "edge", str(edge))
    assert code == 1 and out == "", out
    assert "edge:1 answers NaN or infinity for 3 of the background's 3 rows" in err, err
    assert "(one is the row 3e+38, 3e+38, 3, 4)" in err and "nothing was written" in err, err
    assert "RuntimeWarning" not in err
    prefix = version_prefix("edge", "1")
    assert not store.exists(f"{prefix}/{BACKGROUND_FILE}")
    assert not store.exists(f"{prefix}/{BASELINE_FILE}")
    answer = httpx.post(f"{base}/models/edge/explain", json={"inputs": [[1, 2, 3, 4]]}, timeout=60)
    assert answer.status_code == 422 and "has no background" in answer.json()["error"]


def test_huge_weights_keep_their_proportions(served: tuple[str, LocalStore]) -> None:
    base, store = served
    doc = json.loads(store.get_bytes(f"{version_prefix('huge', '1')}/{BACKGROUND_FILE}"))
    centres = np.array(doc["rows"])
    answer = httpx.post(f"{base}/models/huge/explain", json={"inputs": [[1, 2, 3, 4]]}, timeout=60)
    assert answer.status_code == 200, answer.text
    (row,) = answer.json()["explanations"]
    expected = float(np.mean(centres @ WEIGHTS))  # equal weights: the plain mean
    assert row["base_value"] == [pytest.approx(expected, abs=1e-4)]


def test_weights_that_sum_to_nothing_name_the_file(served: tuple[str, LocalStore]) -> None:
    base, _ = served
    answer = httpx.post(f"{base}/models/zero/explain", json={"inputs": [[1, 2, 3, 4]]}, timeout=60)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert "model" not in error.split(BACKGROUND_FILE)[0], error  # not blamed on the model
    assert f"{BACKGROUND_FILE} has weights [0, 0, 0, 0, 0, ...]" in error, error
    assert "one more than 0" in error


def test_a_lone_one_number_a_row_input_is_one_column(
    served: tuple[str, LocalStore], tmp_path: Path
) -> None:
    base, store = served
    data = tmp_path / "x.csv"
    data.write_text("x\n1\n2\n3\n4\n5\n")
    code, out, err = run(store, "baseline", "doubler", str(data))
    assert code == 0, err
    assert "doubler:1: background = all 5 rows of the data" in out
    answer = httpx.post(f"{base}/models/doubler/explain", json={"inputs": [7.0, 2.0]}, timeout=60)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["features"] == ["x"]
    first, second = doc["explanations"]
    assert first["base_value"] == [pytest.approx(6.0)] and first["prediction"] == [pytest.approx(14.0)]  # fmt: skip
    assert first["attributions"] == [[pytest.approx(8.0)]]
    assert second["attributions"] == [[pytest.approx(-2.0)]]
