"""A model whose only input is a text column (a TfidfVectorizer + LogisticRegression pipeline
through skl2onnx: one `tensor(string)` [N, 1] input) gets a background and a drift baseline
from its training CSV, is explained, served and monitored, as a DataFrame export with string
columns is. Its baseline has no numeric feature at all: its texts, 8 repeated ones, are
counted by category.

Before, `aiaas baseline` refused it ("reads string: drift baselines are for numeric rows"),
while `aiaas explain` said to run `aiaas baseline`: the model could not be explained at all.

Free text (training texts mostly distinct) is not compared by category: every served text
training never held counted as `(new)`, so the column read DRIFT on every run of real
traffic. And a text no known word is in (probabilities exactly [0.5, 0.5]) is counted as the
label predict answers (the model's own), in training's shares and in served ones: the first
best, `neg`, was counted, a class predict never answered.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from skl2onnx import to_onnx
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from functions.drift.job import DriftSettings, run
from functions.runtime.drift.baseline import BASELINE_FILE, DriftBaseline, build
from functions.runtime.drift.live import LiveHistograms
from functions.runtime.manifest import TensorSpec
from functions.runtime.registry import version_prefix
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.infra.test_serve import ServeProcess, start_serve

GOOD = ["good movie", "great plot", "good acting", "lovely film"]
BAD = ["bad movie", "awful plot", "bad acting", "boring film"]
NEW = ["what a good day", "terrible awful day"]  # texts training never held
# Free text: every training text distinct (an adjective, a noun, a word of `SAID`).
LIKED, DISLIKED = ["good", "great", "lovely", "fine"], ["bad", "awful", "boring", "dull"]
NOUNS = ["movie", "plot", "acting", "film", "score"]
SAID, SAID_LATER = ["today", "again", "indeed", "tonight"], ["yesterday", "now", "twice", "still"]
NO_WORD = "!"  # no token: probabilities [0.5, 0.5], the model's own label `pos`


def comments(said: list[str]) -> tuple[list[str], list[str]]:
    """Distinct texts of every adjective, noun and word of `said`, and their labels."""
    texts, labels = [], []
    for adjectives, label in ((LIKED, "pos"), (DISLIKED, "neg")):
        for words in itertools.product(adjectives, NOUNS, said):
            texts.append(" ".join(words))
            labels.append(label)
    return texts, labels


@dataclass
class Reviews:
    store: LocalStore
    server: ServeProcess
    root: Path


@pytest.fixture(scope="module")
def reviews(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reviews]:
    root = tmp_path_factory.mktemp("text-column")
    store = LocalStore(root / "store")
    texts = (GOOD + BAD) * 10
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression())
    pipeline.fit(texts, ["pos" if t in GOOD else "neg" for t in texts])
    onnx = to_onnx(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(pipeline.steps[0][1]): {"locale": "C.UTF-8"}},
    )
    (root / "reviews.onnx").write_bytes(onnx.SerializeToString())
    pd.DataFrame({"text": texts}).to_csv(root / "train.csv", index=False)
    # Free text, and a decision of exactly 0 for a text of no known word: an intercept of
    # 1e-9 makes float32 probabilities [0.5, 0.5] and the model's label `pos` (decision > 0).
    free, labels = comments(SAID)
    liked = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(free, labels)
    liked[-1].intercept_[:] = 1e-9
    options = {id(liked[0]): {"locale": "C.UTF-8"}, id(liked[-1]): {"zipmap": False}}
    text_type = [("text", StringTensorType([None, 1]))]
    onnx = to_onnx(liked, initial_types=text_type, options=options)
    (root / "comments.onnx").write_bytes(onnx.SerializeToString())
    pd.DataFrame({"text": free + [NO_WORD] * 10}).to_csv(root / "comments.csv", index=False)
    cli = ["--store", store.uri]
    assert main([*cli, "publish", str(root / "reviews.onnx"), "--name", "reviews"]) == 0
    assert main([*cli, "publish", str(root / "comments.onnx"), "--name", "comments"]) == 0
    for server in start_serve(store.root, env={"AIAAS_DRIFT_FLUSH_SECONDS": "0.001"}):
        yield Reviews(store, server, root)


def test_baseline_explain_serve_and_monitor(reviews: Reviews, capsys: Any) -> None:
    cli = ["--store", reviews.store.uri]
    assert main([*cli, "baseline", "reviews", str(reviews.root / "train.csv")]) == 0
    out = capsys.readouterr().out
    assert "reviews:1: drift baseline = 80 rows (no numeric feature); text counted by" in out
    key = f"{version_prefix('reviews', '1')}/{BASELINE_FILE}"
    baseline = DriftBaseline.from_json(reviews.store.get_bytes(key))
    assert baseline.features == () and [c.name for c in baseline.categories] == ["text"]
    assert sorted(baseline.categories[0].values) == sorted(GOOD + BAD)

    # Explained against that background: the attribution of the one column is all the change.
    inputs = json.dumps([["good movie"], ["awful plot"], NEW[1:]])
    assert main([*cli, "explain", "reviews", "--inputs", inputs, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["features"] == ["text"] and doc["outputs"] == ["neg", "pos"]
    for row, label in zip(doc["explanations"], ("pos", "neg", "neg"), strict=True):
        total = np.asarray(row["base_value"]) + np.asarray(row["attributions"]).sum(axis=0)
        np.testing.assert_allclose(total, row["prediction"], atol=1e-5)
        assert row["label"] == label and abs(row["attributions"][0][1]) > 0.05
    answer = httpx.post(
        f"{reviews.server.base}/models/reviews/explain", json={"inputs": [["bad acting"]]}
    )
    assert answer.status_code == 200, answer.text

    # Served: training's texts, then texts it never held; the column drifts, by category.
    for texts in [GOOD + BAD] * 15 + [NEW * 20] * 2:  # 160 rows judge 8 categories
        body = {"inputs": [[t] for t in texts]}
        answer = httpx.post(f"{reviews.server.base}/models/reviews/predict", json=body)
        assert answer.status_code == 200, answer.text
        time.sleep(0.01)
    png = reviews.root / "drift.png"
    assert main([*cli, "monitor", "reviews", "--window", "10m", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "reviews:1: 200 rows served" in out, out
    table = out[out.index("feature") :].split("predicted label")[0].splitlines()
    (text,) = [line.split() for line in table if line.startswith("text ")]
    assert float(text[1]) > 0.2 and text[4] == "80" and "1 of 2 drifted" in out, out
    assert png.stat().st_size > 0
    (job,) = [
        d for d in run(reviews.store, DriftSettings(), time.time()) if d["model"] == "reviews"
    ]
    assert "text" in job["drifted"] and job["out_of_range"] == {"text": 80}, job  # type: ignore[operator]
    assert "Traceback" not in reviews.server.output()


def predicted(base: str, name: str, texts: list[str]) -> list[str]:
    """The labels predict answers for `texts`, in requests of 20."""
    labels = []
    for start in range(0, len(texts), 20):
        body = {"inputs": [[t] for t in texts[start : start + 20]]}
        answer = httpx.post(f"{base}/models/{name}/predict", json=body)
        assert answer.status_code == 200, answer.text
        labels += [row["label"] for row in answer.json()["predictions"]]
        time.sleep(0.01)
    return labels


def test_free_text_is_unwatched_and_tied_rows_count_as_answered(
    reviews: Reviews, capsys: Any
) -> None:
    cli = ["--store", reviews.store.uri]
    assert main([*cli, "baseline", "comments", str(reviews.root / "comments.csv")]) == 0
    out = capsys.readouterr().out
    assert "comments:1: drift baseline = 170 rows (no numeric feature)\n" in out, out
    assert "comments:1: unwatched: free text column 'text' (most training rows" in out, out
    key = f"{version_prefix('comments', '1')}/{BASELINE_FILE}"
    baseline = DriftBaseline.from_json(reviews.store.get_bytes(key))
    assert baseline.categories == () and baseline.free_text == ("text",)
    # Training's shares are predict's answers, the tied texts of no word as `pos`.
    training = pd.read_csv(reviews.root / "comments.csv", keep_default_na=False)["text"]
    answered = predicted(reviews.server.base, "comments", list(training))
    assert answered.count("pos") == 90  # 80 liked texts and the 10 of no word
    prediction = baseline.prediction
    assert prediction is not None and prediction.labels == ("neg", "pos")
    assert prediction.counts.tolist() == [answered.count("neg"), answered.count("pos")]

    # Served: texts training never held (a later word each), and 20 of no known word.
    later, _ = comments(SAID_LATER)
    served = predicted(reviews.server.base, "comments", later + [f"qq{i}" for i in range(20)])
    assert served[-20:] == ["pos"] * 20
    served = answered + served
    png = reviews.root / "comments.png"
    args = [*cli, "monitor", "comments", "--window", "10m", "--fail-on-drift"]
    assert main([*args, "--json", "--png", str(png)]) == 0  # normal text: no drift
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == len(served) and doc["free_text"] == ["text"], doc
    assert [f["name"] for f in doc["features"]] == ["(prediction)"] and not doc["drifted"], doc
    shares = {s["label"]: s["served"] for s in doc["label_shares"]}
    assert shares == pytest.approx({k: served.count(k) / len(served) for k in ("neg", "pos")})
    assert png.stat().st_size > 0
    assert main([*args, "--no-png"]) == 0
    out = capsys.readouterr().out
    assert "unwatched: free text column 'text'" in out and "0 of 1 drifted" in out, out
    assert not [line for line in out.splitlines() if line.startswith("text ")], out
    (job,) = [
        d for d in run(reviews.store, DriftSettings(), time.time()) if d["model"] == "comments"
    ]
    assert job["free_text"] == ["text"] and job["drifted"] == [], job
    assert set(job["psi"]) == {"(prediction)"}, job  # type: ignore[call-overload]


def test_a_numeric_model_keeps_its_rows_path(tmp_path: Path) -> None:
    """Only a lone string (or bool) input of a fixed row shape is read as columns; a numeric
    model's requests are still held as plain rows (no per-request change), and a string input
    of no fixed row shape is not."""
    from functions.runtime.input_columns import by_column  # (the other test runs without it)

    path = onnx_factory.linear_classifier(tmp_path / "plain.onnx", features=4)
    numeric = onnx_factory.manifest_for(path, "plain", "1")
    assert not by_column(numeric)
    for spec, columns in (
        (TensorSpec("text", "string", (-1, 1)), True),
        (TensorSpec("text", "string", (-1,)), True),
        (TensorSpec("flags", "bool", (-1, 3)), True),
        (TensorSpec("text", "string", (-1, -1)), False),
    ):
        assert by_column(dataclasses.replace(numeric, inputs=(spec,))) is columns, spec
    rows = np.random.default_rng(0).normal(size=(50, 4))
    live = LiveHistograms(build(rows, ("a", "b", "c", "d"), None, 10), numeric)
    assert live.columns is None and live._read_as is not None
