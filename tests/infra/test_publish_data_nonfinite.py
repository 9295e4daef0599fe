"""`publish --data` of a classifier whose class scores are NaN for some rows.

The predict API refuses such a row (500, "answered non-finite values"), but the card counted
each as a prediction of the first class ("Scored as the predict API answers": accuracy 0.93
with 20 NaN rows of 100, 13 of them right by luck), and the global importance was NaN for every
feature: "largest x_0 nan, x_1 nan, x_2 nan" and an empty plot. Those rows are now left out and
counted, as a regressor's are. A real ONNX graph (logits = Log(x): NaN where x < 0), through
the CLI.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from infra.cli.main import main
from tests import onnx_factory

LABELS = ("a", "b", "c")


def test_rows_of_nan_class_scores_are_left_out_and_counted(tmp_path: Path) -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Log", ["x"], ["logits"])], "g", [x], [logits])
    model = onnx_factory.save(graph, tmp_path / "m.onnx")
    rows = np.random.default_rng(0).uniform(0.1, 1, size=(100, 3)).round(3)
    rows[:20, 1] = -1.0  # Log(-1): NaN scores in the first 20 rows
    truth = [LABELS[i] for i in np.where(rows > 0, rows, -np.inf).argmax(axis=1)]
    lines = [
        "x_0,x_1,x_2,label",
        *(",".join([*map(str, r), t]) for r, t in zip(rows.tolist(), truth, strict=True)),
    ]
    (tmp_path / "held.csv").write_text("\n".join(lines) + "\n")
    out = io.StringIO()
    store = tmp_path / "store"
    argv = [
        "--store",
        str(store),
        "publish",
        str(model),
        "--name",
        "m",
        "--labels",
        ",".join(LABELS),
    ]
    with contextlib.redirect_stdout(out):
        assert main([*argv, "--data", str(tmp_path / "held.csv")]) == 0
    version = store / "models/m/versions/1"
    held_out = json.loads((version / "manifest.json").read_text())["metrics"]["held_out"]
    # the 80 rows the predict API answers, scored as scikit-learn scores them
    served = [LABELS[i] for i in rows[20:].argmax(axis=1)]
    assert held_out["rows"] == 80 and held_out["rows_not_finite"] == 20
    assert held_out["accuracy"] == accuracy_score(truth[20:], served)
    assert held_out["f1"] == f1_score(truth[20:], served, average="macro")
    assert (
        held_out["confusion_matrix"] == confusion_matrix(truth[20:], served, labels=LABELS).tolist()
    )
    assert "on 80 rows of held.csv; 20 more left out: a NaN or infinite answer" in out.getvalue()
    card = (version / "card/card.md").read_text()
    assert "20 rows had a non-finite prediction or label and are left out." in card
    assert "nan" not in card.split("feature importance:")[1]  # largest x_0 nan, x_1 nan, ...
    assert "over 16 rows" in card and (version / "card/importance.png").stat().st_size > 0
