"""A classifier whose best class scores tie exactly answers the class its own label output names.

skl2onnx's TF-IDF + LogisticRegression answers an empty text, or one with no known word, with
probabilities of exactly [0.5, 0.5], while its own `label` output and sklearn's `predict`
(decision > 0) say the second class. Served as the first best score, `predictions` contradicted
the `output_label` in the same response, batch's `pred_label` said the same wrong class, and
publish `--data` scored such rows as misses (accuracy 0.8 where sklearn's is 1.0).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

TEXTS = ["good movie great", "bad film awful", "great acting good", "awful boring bad"] * 5
CLASSES = ["pos", "neg", "pos", "neg"] * 5
ASKED = ["", "zzz qqq", "good movie", "bad film"]  # two tied rows, then two that are not


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from infra.cli.main import main

    tmp = tmp_path_factory.mktemp("ties")
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(TEXTS, CLASSES)
    # Balanced data fits an intercept of ~1e-15, whose sign depends on the solver: a small
    # positive one keeps the tie in float32 and `predict` on the second class ("pos").
    pipeline.steps[1][1].intercept_[:] = 1e-9
    vectorizer = pipeline.steps[0][1]
    onnx = to_onnx(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): {"locale": "C.UTF-8"}},
    )
    path = tmp / "tfidf.onnx"
    path.write_bytes(onnx.SerializeToString())
    held = tmp / "held.csv"
    rows = [*ASKED[1:], "unknownword"]  # an empty cell would be a missing text, not ""
    said = pipeline.predict(rows)
    held.write_text("text,label\n" + "".join(f"{t},{c}\n" for t, c in zip(rows, said, strict=True)))
    store = str(tmp / "store")
    argv = ["--store", store, "publish", str(path), "--name", "mood"]
    assert main([*argv, "--data", str(held), "--target", "label"]) == 0
    assert list(pipeline.predict(ASKED[:2])) == ["pos", "pos"]  # what the model says of a tie
    return tmp, pipeline


def _handler(tmp: Path) -> Any:
    from infra.local.functions import load_handler

    env = {
        "AIAAS_MODEL": "mood",
        "AIAAS_STORE": str(tmp / "store"),
        "AIAAS_CACHE_DIR": str(tmp / "c"),
    }
    return load_handler("functions.predict.handler.handler", env)


def test_a_tied_row_answers_the_models_own_label(published: tuple[Path, Any]) -> None:
    from tests.functions.test_predict_events import http_event

    tmp, pipeline = published
    body = json.dumps({"inputs": [[t] for t in ASKED]})
    event = http_event("POST", "/models/mood/predict", body, query={"top_k": "2"})
    answer = _handler(tmp)(event, None)
    assert answer["statusCode"] == 200, answer["body"]
    doc = json.loads(answer["body"])
    assert doc["outputs"]["output_probability"][:2] == [[0.5, 0.5], [0.5, 0.5]]  # exact ties
    expected = [str(c) for c in pipeline.predict(ASKED)]
    assert doc["outputs"]["output_label"] == expected
    assert [p["label"] for p in doc["predictions"]] == expected
    assert [[c["label"] for c in p["top_k"]] for p in doc["predictions"][:2]] == [
        ["pos", "neg"]
    ] * 2


def test_oip_classification_ranks_the_models_label_first(published: tuple[Path, Any]) -> None:
    from tests.functions.test_predict_events import http_event

    tmp, _ = published
    doc = {
        "inputs": [{"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": ASKED[:2]}],
        "outputs": [
            {"name": "output_label"},
            {"name": "output_probability", "parameters": {"classification": 2}},
        ],
    }
    answer = _handler(tmp)(http_event("POST", "/v2/models/mood/infer", json.dumps(doc)), None)
    assert answer["statusCode"] == 200, answer["body"]
    ranked = {o["name"]: o["data"] for o in json.loads(answer["body"])["outputs"]}
    assert ranked["output_label"] == ["pos", "pos"]
    assert ranked["output_probability"] == ["0.500000:1:pos", "0.500000:0:neg"] * 2


def test_the_held_out_accuracy_counts_tied_rows_as_the_model_answers(
    published: tuple[Path, Any],
) -> None:
    tmp, _ = published
    manifest = json.loads((tmp / "store/models/mood/versions/1/manifest.json").read_text())
    assert manifest["metrics"]["held_out"]["accuracy"] == 1.0, manifest["metrics"]


def test_batch_pred_label_follows_the_models_label(published: tuple[Path, Any]) -> None:
    from functions.runtime.store import LocalStore
    from infra.cli.main import main

    tmp, pipeline = published
    rows = tmp / "rows.csv"
    rows.write_text("text\n" + "".join(f"{t}\n" for t in ASKED[1:]) + "unknownword\n")
    store = LocalStore(tmp / "store")
    assert main(["--store", store.uri, "batch", "mood", str(rows), "--name", "out.csv"]) == 0
    out = list(csv.DictReader(io.StringIO(store.get_bytes("batch/mood/output/out.csv").decode())))
    asked = [*ASKED[1:], "unknownword"]
    assert [r["pred_label"] for r in out] == [str(c) for c in pipeline.predict(asked)]
