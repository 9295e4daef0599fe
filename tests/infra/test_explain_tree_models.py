"""Tree ensembles are explained as any model is: Kernel SHAP only calls the model.

A reviewer asks what a gradient-free model gets: a tree's gradient is 0 almost everywhere, so
a gradient method (integrated gradients, saliency) would say nothing. aiaas asks the ONNX
graph for answers alone, so a skl2onnx GradientBoostingClassifier and RandomForestRegressor
get the exact Shapley values of the masked-model game over their background (checked here
against the formula over all 16 subsets, scored by scikit-learn itself), and a feature no
tree splits on gets 0. Real parts: skl2onnx exports with default options, `aiaas publish`,
`aiaas baseline`, `aiaas explain --json`.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor

from functions.runtime.store import LocalStore
from infra.cli.main import main

ROWS = [[0.5, 0.2, 3.0, -3.0], [-1.0, 1.0, 0.0, 0.0], [2.0, -2.0, 1.0, 1.0]]


def cli_output(args: list[str]) -> str:
    """`aiaas ARGS` in process: its stdout, asserting it exited 0 (its stderr otherwise)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 0, err.getvalue()
    return out.getvalue()


def _shapley(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, bg: np.ndarray, w: np.ndarray) -> np.ndarray:  # fmt: skip
    """The Shapley values of v(S) = sum_k w_k f(x on S, background row k elsewhere)."""
    m = len(x)

    def v(subset: tuple[int, ...]) -> float:
        rows = bg.copy()
        rows[:, list(subset)] = x[list(subset)]
        return float((w * f(rows)).sum() / w.sum())

    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for size in range(m):
            share = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            for subset in itertools.combinations(others, size):
                phi[i] += share * (v((*subset, i)) - v(subset))
    return phi


@pytest.mark.parametrize("kind", ["gradient-boosting", "random-forest"])
def test_a_tree_ensemble_gets_the_exact_shapley_values(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)  # c and d: no tree splits on them
    if kind == "gradient-boosting":
        y = ((x[:, 0] > 0) & (x[:, 1] > -0.5)).astype(int)
        fitted = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(x, y)

        def answer(rows: np.ndarray) -> np.ndarray:
            return fitted.predict_proba(rows)[:, 1]
    else:
        y = 3.0 * (x[:, 0] > 0) + 2.0 * (x[:, 1] > 0)
        fitted = RandomForestRegressor(n_estimators=10, max_depth=3, random_state=0).fit(x, y)

        def answer(rows: np.ndarray) -> np.ndarray:
            return fitted.predict(rows)

    model, data = tmp_path / "tree.onnx", tmp_path / "train.csv"
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    data.write_text("a,b,c,d\n" + "".join(",".join(map(str, r)) + "\n" for r in x.tolist()))
    store = LocalStore(tmp_path / "store")
    base = ["--store", store.uri]
    cli_output([*base, "publish", str(model), "--name", "tree", "--features", "a,b,c,d"])
    cli_output([*base, "baseline", "tree", str(data)])
    doc = json.loads(cli_output([*base, "explain", "tree", "--inputs", json.dumps(ROWS), "--json"]))
    background = json.loads(store.get_bytes("models/tree/versions/1/background.json"))
    bg = np.asarray(background["rows"], dtype=np.float32)
    weights = np.asarray(background["weights"])
    assert doc["method"] == "kernel_shap" and doc["parameters"]["exact"] is True
    column = 1 if kind == "gradient-boosting" else 0  # class "1"; the regression's one value
    for row, explained in zip(ROWS, doc["explanations"], strict=True):
        got = np.asarray(explained["attributions"])[:, column]
        want = _shapley(answer, np.asarray(row, dtype=np.float32), bg, weights)
        assert np.abs(got - want).max() < 1e-5, (got, want)
        assert np.abs(got[2:]).max() < 1e-6 and np.abs(got[:2]).max() > 0.05, got
