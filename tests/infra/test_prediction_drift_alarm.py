"""The drift alarm reads what `aiaas monitor` judges, the predictions included (hunt_monitor 1).

`Predict<model>Drift` alarms on the drift job's `aiaas_drift_max_psi`. It was the largest PSI
of the features alone, so a label shift was DRIFT to `aiaas monitor --fail-on-drift` and
nothing to the alarm; and a model whose only input is free text (a TF-IDF pipeline: its
column is not compared by category, "the predictions are watched") had a max PSI of 0.0 on
every run, its alarm unable to fire. A real skl2onnx pipeline, `aiaas serve`, the real job.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from functions.drift.job import DRIFTED, MAX_PSI, PREDICTION_PSI, DriftSettings, run
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests.infra.test_serve import ServeProcess, start_serve

LIKED, DISLIKED = ["good", "great", "lovely", "fine"], ["bad", "awful", "boring", "dull"]
NOUNS = ["movie", "plot", "acting", "film", "score"]


def reviews(said: list[str], adjectives: list[str]) -> list[str]:
    """Distinct texts (free text: no training text repeats)."""
    return [" ".join(words) for words in itertools.product(adjectives, NOUNS, said)]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStore, ServeProcess]]:
    root = tmp_path_factory.mktemp("prediction-drift")
    store = LocalStore(root / "store")
    said = ["today", "again", "indeed", "tonight", "once"]
    liked, disliked = reviews(said, LIKED), reviews(said, DISLIKED)
    texts, labels = liked + disliked, ["pos"] * len(liked) + ["neg"] * len(disliked)
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, labels)
    options = {id(pipeline[0]): {"locale": "C.UTF-8"}, id(pipeline[-1]): {"zipmap": False}}
    onnx = to_onnx(pipeline, initial_types=[("text", StringTensorType([None, 1]))], options=options)
    (root / "notes.onnx").write_bytes(onnx.SerializeToString())
    pd.DataFrame({"text": texts}).to_csv(root / "train.csv", index=False)
    cli = ["--store", store.uri]
    assert main([*cli, "publish", str(root / "notes.onnx"), "--name", "notes"]) == 0
    assert main([*cli, "baseline", "notes", str(root / "train.csv")]) == 0
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield store, server


def test_a_label_shift_raises_the_drift_alarms_metric(
    served: tuple[LocalStore, ServeProcess], capsys: Any
) -> None:
    store, server = served
    # Only dislikes, worded as training never did: the text is free, the labels all `neg`.
    later = reviews(["yesterday", "now", "twice", "still", "later", "first"], DISLIKED)
    for start in range(0, len(later), 20):
        body = {"inputs": [[t] for t in later[start : start + 20]]}
        answer = httpx.post(f"{server.base}/models/notes/predict", json=body)
        assert answer.status_code == 200, answer.text
        assert {p["label"] for p in answer.json()["predictions"]} == {"neg"}
        time.sleep(0.01)
    time.sleep(0.2)  # the last rows' snapshot
    cli = ["--store", store.uri, "monitor", "notes", "--window", "10m", "--no-png"]
    assert main([*cli, "--fail-on-drift"]) == 1  # `aiaas monitor` calls it drift ...
    out = capsys.readouterr()
    assert "drift over PSI 0.2 in the last 10m: (prediction)" in out.err, out
    (doc,) = [d for d in run(store, DriftSettings(), time.time()) if d["model"] == "notes"]
    assert doc["aiaas_drift_rows"] == len(later) and doc["free_text"] == ["text"], doc
    assert doc["drifted"] == ["(prediction)"] and doc[DRIFTED] == 0, doc  # no feature drifted
    # ... and so does the metric the alarm reads (it was 0.0 whatever the predictions did).
    assert doc[MAX_PSI] == doc[PREDICTION_PSI] and doc[MAX_PSI] > 1.0, doc  # type: ignore[operator]
    assert "Traceback" not in server.output()
