"""A scikit-learn text model (TfidfVectorizer) exported by skl2onnx lower-cases in the locale
en_US.UTF-8 unless told otherwise, and onnxruntime refuses to load it where that locale is
missing (this machine, slim images): the refusal says which locale and the export option that
needs none. Exported with `locale: C.UTF-8`, it publishes and serves as sklearn predicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.load_errors import load_refusal

ORT_TEXT = (
    "[ONNXRuntimeError] : 1 : FAIL : Exception during initialization: /onnxruntime_src/"
    "onnxruntime/core/providers/cpu/text/string_normalizer.cc:235 onnxruntime::StringNormalizer"
    "::Locale::Locale(const std::string&)::<lambda()> Failed to construct locale with name:"
    "en_US.UTF-8:locale::facet::_S_create_c_locale name not valid:Please, install necessary "
    "language-pack-XX and configure locales\n"
)


def test_a_missing_locale_is_said_with_the_export_option() -> None:
    assert load_refusal(ORT_TEXT) == (
        "its StringNormalizer (a text vectorizer's lower-casing) asks for the locale "
        "en_US.UTF-8, which this machine does not have (slim images often lack it): export it "
        "with a locale every Linux has, skl2onnx's options={id(vectorizer): {'locale': "
        "'C.UTF-8'}}, or install that locale where it is served"
    )


def test_exported_with_c_utf8_it_publishes_and_serves(tmp_path: Path) -> None:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from infra.cli.main import main
    from infra.local.functions import load_handler
    from tests.functions.test_predict_events import http_event

    texts = ["good day", "bad day", "good food", "bad weather", "Good", "BAD"]
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [1, 0, 1, 0, 1, 0])
    vectorizer = pipeline.steps[0][1]
    onnx = to_onnx(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): {"locale": "C.UTF-8"}},
    )
    path = tmp_path / "tfidf.onnx"
    path.write_bytes(onnx.SerializeToString())
    store = str(tmp_path / "store")
    assert (
        main(["--store", store, "publish", str(path), "--name", "mood", "--alias", "production"])
        == 0
    )
    env = {"AIAAS_MODEL": "mood", "AIAAS_STORE": store, "AIAAS_CACHE_DIR": str(tmp_path / "c")}
    handler = load_handler("functions.predict.handler.handler", env)
    asked = ["GOOD day", "bad Weather"]
    body = json.dumps({"inputs": [[t] for t in asked]})
    answer = handler(http_event("POST", "/models/mood/predict", body), None)
    assert answer["statusCode"] == 200, answer["body"]
    labels = [p["label"] for p in json.loads(answer["body"])["predictions"]]
    assert labels == [str(v) for v in pipeline.predict(np.array(asked))]
