"""A file of support tickets, one text a line with no header, scored by a scikit-learn TF-IDF
pipeline (one string input `text` [N, 1]).

Its first ticket was read as the header, and the error told the user to "publish a version with
--features refund please": the ticket as a feature name. It now asks whether the header line is
missing, quoting the line read as one, and offers no --features.
"""

from __future__ import annotations

from pathlib import Path

from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from functions.runtime.store import LocalStore
from tests.batch_support import run
from tests.cli_run import run as cli


def published_tickets(tmp_path: Path) -> LocalStore:
    """A store with `tickets` published: a TF-IDF pipeline of one string input `text` [N, 1]."""
    vectorizer = TfidfVectorizer()
    pipeline = Pipeline([("words", vectorizer), ("clf", LogisticRegression())])
    pipeline.fit(
        ["refund my card", "package is late", "refund again", "late courier"], [0, 1, 0, 1]
    )
    onx = convert_sklearn(
        pipeline,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(vectorizer): {"locale": "C.UTF-8"}},
    )
    path = tmp_path / "tickets.onnx"
    path.write_bytes(onx.SerializeToString())
    store = LocalStore(tmp_path / "store")
    code, _, err = cli(store, "publish", str(path), "--name", "tickets")
    assert code == 0, err
    return store


def test_a_headerless_file_of_texts_is_asked_about_its_header(tmp_path: Path) -> None:
    store = published_tickets(tmp_path)

    store.put_bytes("batch/tickets/input/t.csv", b"refund please\npackage late\n")
    summary = run(store, tmp_path, "batch/tickets/input/t.csv")
    assert summary["status"] == "failed"
    error = summary["error"]
    assert "is the header line missing? its first line, 'refund please', was read" in error
    assert "--features" not in error

    store.put_bytes("batch/tickets/input/ok.csv", b"text\nrefund please\npackage late\n")
    assert run(store, tmp_path, "batch/tickets/input/ok.csv")["status"] == "succeeded"
