"""scikit-learn text vectorizers with a token_pattern of the user's own, exported by skl2onnx.

skl2onnx copies such a pattern into onnxruntime's Tokenizer, which reads it with RE2 (ASCII
`\\w` and `\\b`): `\\b\\w\\w+\\b` read `café` as `caf`, the served model answered those texts
otherwise than `predict_proba`, and `aiaas publish --data` published it with success. It now
refuses, naming the rows of --data whose words differ; without --data it warns on a few made-up
texts; a pattern both read alike publishes with neither (vectorizer_parity.py). A pattern RE2
cannot parse was "Can not digest tokenexp: invalid perl operator: (?u" and is now said with the
export that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from functions.runtime.store import LocalStore
from tests.cli_run import run
from tests.infra.test_vectorizer_tokens import served

TEXTS = ["late package café", "courier late today", "package never came", "crème late",
         "refund my invoice", "invoice charged twice", "naïve refund please", "refund now",
         "app crash on login", "login error again", "über crash", "crash every day"]  # fmt: skip
LABELS = ["delivery"] * 4 + ["billing"] * 4 + ["technical"] * 4


def exported(tmp_path: Path, pattern: str | None) -> tuple[Path, Pipeline]:
    vectorizer = TfidfVectorizer(**({"token_pattern": pattern} if pattern else {}))
    pipeline = Pipeline([("words", vectorizer), ("clf", LogisticRegression(C=10.0))])
    pipeline.fit(TEXTS, LABELS)
    onx = convert_sklearn(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): {"locale": "C.UTF-8"}},
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    return path, pipeline


def held_out(tmp_path: Path) -> Path:
    path = tmp_path / "held.csv"
    path.write_text(
        "text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(TEXTS, LABELS, strict=True))
    )
    return path


def test_a_pattern_re2_reads_otherwise_is_refused_on_the_rows_of_data_that_differ(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    path, pipeline = exported(tmp_path, r"\b\w\w+\b")
    code, out, err = run(
        store, "publish", str(path), "--name", "words", "--data", str(held_out(tmp_path))
    )
    assert code != 0, out
    assert "the text vectorizer reads the words of 4 of 12 rows otherwise than scikit-learn" in err
    assert "line 2 'late package café' is read as ['late', 'package', 'caf']" in err
    assert "scikit-learn reads ['late', 'package', 'café']" in err
    assert r"[\p{L}\p{N}_]" in err
    assert not (tmp_path / "store" / "models" / "words").exists()  # nothing published

    code, out, err = run(store, "publish", str(path), "--name", "words")  # no data: a warning
    assert code == 0, err
    said = out + err
    assert r"warning: the text vectorizer's token pattern '\b\w\w+\b' is read by" in said
    assert (
        "'café crème' is read as ['caf', 'cr', 'me'], scikit-learn reads ['café', 'crème']" in said
    )
    asked = ["café", "über", "naïve crème"]  # vocabulary words RE2 never matches
    answered = served(store, tmp_path, "words", asked)
    assert np.abs(answered - pipeline.predict_proba(asked)).max() > 0.05  # what it warns of


def test_a_pattern_both_read_alike_publishes_with_data_and_no_warning(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    path, pipeline = exported(tmp_path, r"[a-z]{2,}")  # ASCII in both: café is caf to both
    code, out, err = run(
        store, "publish", str(path), "--name", "words", "--data", str(held_out(tmp_path))
    )
    assert code == 0, err
    assert "token pattern" not in out + err
    np.testing.assert_allclose(
        served(store, tmp_path, "words", TEXTS), pipeline.predict_proba(TEXTS), atol=1e-5
    )


def test_the_default_pattern_exported_as_skl2onnx_does_is_refused_on_data_that_differs(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    path, _ = exported(tmp_path, None)  # skl2onnx writes it as [a-zA-Z0-9_]+
    code, out, err = run(
        store, "publish", str(path), "--name", "words", "--data", str(held_out(tmp_path))
    )
    assert code != 0, out
    assert "line 2 'late package café' is read as ['late', 'package', 'caf']" in err


@pytest.mark.parametrize("pattern", [r"(?u)\b\w+\b", r"\w+(?=\s)"])
def test_a_pattern_re2_cannot_parse_is_refused_saying_which_export_reads_it(
    tmp_path: Path, pattern: str
) -> None:
    store = LocalStore(tmp_path / "store")
    path, _ = exported(tmp_path, pattern)
    code, out, err = run(store, "publish", str(path), "--name", "words")
    assert code != 0, out
    assert (
        "its Tokenizer's pattern (a text vectorizer's token_pattern) is not one onnxruntime's RE2 reads"
        in err
    )
    assert "tokenizer.cc" not in err
    assert "'tokenexp'" in err
