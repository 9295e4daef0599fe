"""A DataFrame model whose every column is a string: baselined, served and monitored.

Categories have no quantiles: each string column is counted by category (categories.py),
beside the predictions; before, each fold failed stacking zero columns and was dropped with a
logged traceback, and later string columns were not monitored at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_explain_categorical import STRINGS, _frame, _records
from tests.infra.test_serve import ServeProcess, start_serve


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalStore, ServeProcess, pd.DataFrame]]:
    root = tmp_path_factory.mktemp("drift-strings")
    store = LocalStore(root / "store")
    frame, target = _frame(400, seed=1)
    frame = frame[STRINGS]
    pipeline = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression())
    pipeline.fit(frame, target)
    (root / "plans.onnx").write_bytes(to_onnx(pipeline, frame[:1]).SerializeToString())
    assert main(["--store", store.uri, "publish", str(root / "plans.onnx"), "--name", "plans"]) == 0
    frame.to_csv(root / "train.csv", index=False)
    assert main(["--store", store.uri, "baseline", "plans", str(root / "train.csv")]) == 0
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield store, server, frame


def test_its_categories_and_predictions_are_monitored(
    served: tuple[LocalStore, ServeProcess, pd.DataFrame], capsys: Any
) -> None:
    store, server, frame = served
    for start in (0, 25):  # the second request flushes the first's counts, and its own
        body = {"instances": _records(frame.iloc[start : start + 25])}
        answer = httpx.post(f"{server.base}/models/plans/predict", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        time.sleep(0.01)
    assert main(["--store", store.uri, "monitor", "plans", "--window", "10m", "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "plans:1: 50 rows served" in out, out
    table = out[out.index("feature") :].split("predicted label")[0].splitlines()[1:]
    names = sorted(line.split()[0] for line in table[:-1] if line.split())
    assert names == ["(prediction)", "colour", "plan"], out
    assert table[-1] == "0 of 3 drifted", out
    assert "dropped" not in server.output() and "Traceback" not in server.output()
