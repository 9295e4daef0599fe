"""scikit-learn text pipelines exported with skl2onnx's default tokenizer pattern.

skl2onnx writes scikit-learn's default `token_pattern` as onnxruntime's ASCII `[a-zA-Z0-9_]+`:
served, `lateé` was read as the vocabulary word `late`, `rückerstattung` was never matched, and
a CountVectorizer's bigrams across `a` or `I` were not scikit-learn's, so texts were answered
otherwise than `predict_proba` answered them, and publish said nothing. It now warns, naming the
export option that reads words as scikit-learn does; exported so, the served answers equal
`predict_proba` (vectorizer_tokens.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from functions.predict.service import service_from_env
from functions.runtime.store import LocalStore
from infra.cli.vectorizer_tokens import LIKE_SKLEARN
from tests.batch_support import pool
from tests.cli_run import run
from tests.functions.test_predict_events import body_of, http_event

TEXTS = [
    "late package again", "courier late today", "where is my package", "package never came",
    "refund my invoice", "rückerstattung bitte", "invoice charged twice", "i need a refund",
    "app crash on login", "login error again", "the app is broken", "a crash every day",
]  # fmt: skip
LABELS = ["delivery"] * 4 + ["billing"] * 4 + ["technical"] * 4
ASKED = ["lateé", "Rückerstattung", "i need a refund now", "a crash", "late package", "é"]


def exported(tmp_path: Path, vectorizer: object, tokenexp: str | None) -> tuple[Path, Pipeline]:
    pipeline = Pipeline([("words", vectorizer), ("clf", LogisticRegression(C=10.0))])
    pipeline.fit(TEXTS, LABELS)
    options: dict[str, str] = {"locale": "C.UTF-8"}  # every Linux has it
    if tokenexp is not None:
        options["tokenexp"] = tokenexp
    onx = convert_sklearn(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): options},
    )
    path = tmp_path / f"{'fixed' if tokenexp else 'default'}.onnx"
    path.write_bytes(onx.SerializeToString())
    return path, pipeline


def served(
    store: LocalStore, tmp_path: Path, name: str, texts: Sequence[str] = tuple(ASKED)
) -> np.ndarray:
    """The probabilities the predict API answers `texts` with."""
    service = service_from_env({"AIAAS_MODEL": name}, pool(store, tmp_path))
    body = json.dumps({"instances": [{"text": text} for text in texts]})
    answer = service.handle(http_event("POST", f"/models/{name}/predict", body))
    assert answer["statusCode"] == 200, answer["body"]
    return np.asarray(body_of(answer)["outputs"]["output_probability"])


@pytest.mark.parametrize("bigrams", [False, True])
def test_publish_warns_of_the_ascii_pattern_and_the_advised_export_answers_as_sklearn(
    tmp_path: Path, bigrams: bool
) -> None:
    store = LocalStore(tmp_path / "store")
    make = (lambda: CountVectorizer(ngram_range=(1, 2))) if bigrams else TfidfVectorizer
    path, pipeline = exported(tmp_path, make(), None)
    code, out, err = run(store, "publish", str(path), "--name", "words")
    assert code == 0, err
    said = out + err
    assert "warning: the text vectorizer reads words with skl2onnx's ASCII pattern" in said
    assert "'rückerstattung'" in said  # a vocabulary word the graph never matches
    assert ("one-letter word" in said) is bigrams
    assert LIKE_SKLEARN in said
    expected = pipeline.predict_proba(ASKED)
    assert np.abs(served(store, tmp_path, "words") - expected).max() > 0.05  # what it warns of

    path, pipeline = exported(tmp_path, make(), LIKE_SKLEARN)
    code, out, err = run(store, "publish", str(path), "--name", "fixed")
    assert code == 0, err
    assert "ASCII pattern" not in out + err
    np.testing.assert_allclose(served(store, tmp_path, "fixed"), expected, atol=1e-5)
