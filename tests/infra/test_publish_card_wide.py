"""The card's feature importance of a model with more features than its old fixed budget pinned.

`aiaas publish --data` draws a global importance plot: mean |Kernel SHAP| over 16 rows. It
used 1,024 coalitions whatever the model: for a 784-feature model (a flat 28x28 image, a wide
table) that is 512 complement pairs for 783 unknowns, and the card ranked weightless features
first (X_179 8.11, X_239 6.02, ...; the true X_0 1.58 not in its top 15). It now uses the
coalitions `/explain` uses by default (2 x features + 2,048) and says how many, naming the
largest. Real parts: a skl2onnx LinearRegression, `aiaas publish` with a CSV of held-out rows.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression

from functions.runtime.store import LocalStore
from infra.cli.main import main

WIDTH = 784


def test_a_784_feature_linear_models_card_ranks_its_true_top_features(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, WIDTH)).astype(np.float32)
    weights = np.r_[[5.0, -4.0, 3.0, 2.0], rng.normal(size=WIDTH - 4) * 0.01]
    y = x @ weights
    model = tmp_path / "wide.onnx"
    model.write_bytes(to_onnx(LinearRegression().fit(x, y), x[:1]).SerializeToString())
    data = tmp_path / "held-out.csv"
    header = ",".join([*(f"X_{i}" for i in range(WIDTH)), "label"])
    data.write_text("\n".join([header, *(",".join(map(str, [*r, t])) for r, t in zip(x.tolist(), y.tolist(), strict=True))]) + "\n")  # fmt: skip
    store = LocalStore(tmp_path / "store")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["--store", store.uri, "publish", str(model), "--name", "wide", "--data", str(data), "--no-progress"])  # fmt: skip
    assert code == 0, err.getvalue()
    card = store.get_bytes("models/wide/versions/1/card/card.md").decode()
    line = next(line for line in card.splitlines() if line.startswith("- feature importance:"))
    assert "over 16 rows, 3,616 coalitions a row (sampled)" in line, line
    largest = re.findall(r"(X_\d+) [\d.e+-]+", line.split("largest ", 1)[1])
    assert largest[:4] == ["X_0", "X_1", "X_2", "X_3"], line
    assert "![Feature importance](importance.png)" in card
