"""The card's feature importance reads a held-out file across, not its first 16 rows.

`aiaas publish --data` explains 16 rows for the card's global importance and summarises a
background from the file. It took the file's first rows: a held-out file sorted by its label
(an export `ORDER BY defaulted`) or by a column gave 16 rows from one end of it. A logistic
model of weights 2, -1, 0, 0.5, 3 over standard-normal features, its file sorted by label, was
carded with f0 as the most important (f4 is), and a linear regression of the same weights, its
file sorted by f3, with f3 (0.5) above f1 (-1); exit 0 both. The rows are now spread evenly over
the file, so the true ranking comes out whatever its order. Real parts: skl2onnx exports,
`aiaas publish` with a CSV of held-out rows.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression

from functions.runtime.store import LocalStore
from infra.cli.main import main
from infra.cli.publish_scoring import spread

WEIGHTS = np.array([2.0, -1.0, 0.0, 0.5, 3.0])  # the true ranking: f4, f0, f1, f3, f2


@pytest.mark.parametrize(
    ("task", "order"), [("classifier", "label"), ("regressor", "f3"), ("regressor", "label")]
)
def test_a_sorted_held_out_files_card_ranks_the_true_features(
    tmp_path: Path, task: str, order: str
) -> None:
    x = np.random.default_rng(1).normal(size=(200, 5)).astype(np.float32)
    logit = x.astype(np.float64) @ WEIGHTS + 0.1
    if task == "classifier":  # the weights set by hand, as a user checks a known model
        y = (np.random.default_rng(0).random(200) < 1 / (1 + np.exp(-logit))).astype(int)
        fitted = LogisticRegression().fit(x, y)
        fitted.coef_, fitted.intercept_ = WEIGHTS[None].copy(), np.array([0.1])
        onnx = to_onnx(fitted, x[:1], options={"zipmap": False})
    else:
        y = logit
        onnx = to_onnx(LinearRegression().fit(x, y), x[:1])
    model = tmp_path / "model.onnx"
    model.write_bytes(onnx.SerializeToString())
    key = y if order == "label" else x[:, int(order[1])]  # as a database export may be sorted
    data = tmp_path / "held-out.csv"
    lines = [",".join(map(str, [*x[i].tolist(), y[i]])) for i in np.argsort(key, kind="stable")]
    data.write_text("\n".join(["f0,f1,f2,f3,f4,label", *lines]) + "\n")
    store = LocalStore(tmp_path / "store")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", "m", "--features", "f0,f1,f2,f3,f4", "--data", str(data), "--no-progress"])  # fmt: skip
    assert code == 0, err.getvalue()
    card = store.get_bytes("models/m/versions/1/card/card.md").decode()
    line = next(line for line in card.splitlines() if line.startswith("- feature importance:"))
    largest = re.findall(r"(f\d) [\d.e+-]+", line.split("largest ", 1)[1])
    assert largest == ["f4", "f0", "f1", "f3", "f2"], line
    assert "over 16 rows" in line and "the rows spread evenly over the file" in line, line


def test_spread_takes_the_first_and_last_row_and_none_twice() -> None:
    assert spread(16, 10).tolist() == list(range(10))
    assert spread(4, 10).tolist() == [0, 3, 6, 9]
    picked = spread(16, 17)
    assert len(set(picked.tolist())) == 16 and picked[0] == 0 and picked[-1] == 16
