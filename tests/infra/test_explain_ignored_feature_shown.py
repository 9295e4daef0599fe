"""A feature the model ignores is shown with attribution 0 by `aiaas explain`'s table and the
card's importance line, not with the solve's float rounding.

A reviewer checks the dummy axiom on a model of known weights: a feature of weight 0 gets 0.
The table said `f1 +7.589e-17` (or `-2.22e-16`, row by row) and the card named it among the
"largest" (`f2 5.05e-17`), read as a feature moving the prediction a little. --json keeps the
values as fitted. Real parts: a skl2onnx LinearRegression of hand-set weights, `aiaas publish
--data`, `aiaas baseline`, `aiaas explain`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.runtime.store import LocalStore
from infra.cli.explain_plot import shown_values
from tests.infra.test_explain_tree_models import cli_output

WEIGHTS = np.array([2.0, 0.0, -1.0, 0.0])


def test_a_weightless_feature_reads_0_in_the_table_and_the_card(tmp_path: Path) -> None:
    x = np.random.default_rng(3).normal(size=(120, 4)).astype(np.float32)
    y = x.astype(np.float64) @ WEIGHTS + 0.5
    fitted = LinearRegression().fit(x, y)
    fitted.coef_, fitted.intercept_ = WEIGHTS.copy(), 0.5
    model = tmp_path / "linear.onnx"
    model.write_bytes(to_onnx(fitted, x[:1]).SerializeToString())
    data = tmp_path / "held-out.csv"
    rows = [",".join(map(str, [*r, t])) for r, t in zip(x.tolist(), y.tolist(), strict=True)]
    data.write_text("\n".join(["a,b,c,d,label", *rows]) + "\n")
    store = LocalStore(tmp_path / "store")
    base = ["--store", store.uri]
    cli_output([*base, "publish", str(model), "--name", "m", "--features", "a,b,c,d", "--task", "regression", "--data", str(data), "--no-progress"])  # fmt: skip
    cli_output([*base, "baseline", "m", str(data)])
    card = store.get_bytes("models/m/versions/1/card/card.md").decode()
    line = next(line for line in card.splitlines() if line.startswith("- feature importance:"))
    largest = line.split("largest ", 1)[1].split(", the rows")[0]
    assert largest.startswith("a ") and ", c " in largest, line
    assert sorted(largest.split(", ")[2:]) == ["b 0", "d 0"], line
    inputs = json.dumps([[1.5, 7.0, -2.0, 3.0], [-1.0, -4.0, 0.5, 9.0]])
    table = cli_output([*base, "explain", "m", "--inputs", inputs])
    shown = [line.split() for line in table.splitlines() if line.startswith("  ")]
    assert [v for name, v in shown if name in ("b", "d")] == ["+0"] * 4, table
    doc = json.loads(cli_output([*base, "explain", "m", "--inputs", inputs, "--json"]))
    for row in doc["explanations"]:  # --json: the values as fitted, additive
        values = np.asarray(row["attributions"])[:, 0]
        assert abs(values.sum() - (row["prediction"][0] - row["base_value"][0])) < 1e-5
        assert np.abs(values[[1, 3]]).max() < 1e-9


def test_shown_values_keeps_whatever_is_not_rounding() -> None:
    assert shown_values(np.array([1.19, -6.7e-8, 1e-3, 0.0])).tolist() == [1.19, 0.0, 1e-3, 0.0]
    assert shown_values(np.array([0.0, 0.0])).tolist() == [0.0, 0.0]
    assert shown_values(np.array([2e-12, -1e-12])).tolist() == [2e-12, -1e-12]  # its own scale
