"""A long text answers as the user's tokenizer reading all of it, where it holds a vertical tab
or form feed (HF text hunt #2).

Serving tokenizes a text over 16 characters per token the model reads from a beginning of it
(docs/text.md). BERT's normalizer deletes `\\v` and `\\f`, joining the letters either side into
one word; a beginning cut at one ended in another word, read by the model in place of the
whole text's `[UNK]`: another answer, with a 200, in predict, OIP, explanations and batch. Text
pulled from .docx files carries `\\v` (Word's soft line break). The reference is the user's side:
`Tokenizer.from_file(...)` truncating the whole text to the model's 24 positions and a bare
onnxruntime session of the original file; serving is `aiaas serve` on the version published by
`aiaas publish --tokenizer` (tests/infra/test_publish_tokenizer.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tokenizers import Tokenizer

from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import MODEL, POSITIONS, Built, built
from tests.infra.test_serve import ServeProcess, start_serve

__all__ = ["built"]  # the fixture, shared

WORDS = ["where", "is", "my", "parcel", "order", "package", "the", "app", "crashes", "when", "i",
         "open", "settings", "please", "reset", "password", "was", "charged", "twice", "on",
         "card"]  # fmt: skip
# A layout-preserved text (columns padded with spaces, as `pdftotext -layout` writes): its
# first whitespace past 16 x 24 characters is the `\v` (or `\f`) inside `ans\vq`.
HEAD = (" " * 14).join(WORDS).ljust(382)
TEXTS = [HEAD + f"ans{joiner}q money refund twice card " * 3 for joiner in ("\v", "\f")]


def own(built: Built, texts: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """Logits and tokens of the user's own tokenizer (whole texts) and the original file."""
    tokenizer = Tokenizer.from_file(str(built.tokenizer))
    tokenizer.enable_truncation(POSITIONS)
    encodings = tokenizer.encode_batch(texts)
    feeds = {
        name: np.array([getattr(e, attr) for e in encodings], dtype=np.int64)
        for name, attr in (
            ("input_ids", "ids"),
            ("attention_mask", "attention_mask"),
            ("token_type_ids", "type_ids"),
        )
    }
    session = ort.InferenceSession(str(built.model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0]), [e.tokens for e in encodings]


@pytest.fixture(scope="module")
def server(built: Built) -> Iterator[ServeProcess]:
    yield from start_serve(built.store.root)


@pytest.fixture
def http(server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, timeout=30) as client:
        yield client


def test_the_whole_texts_last_word_is_read(built: Built) -> None:
    _, tokens = own(built, TEXTS)
    assert [t[-3:] for t in tokens] == [["card", "[UNK]", "[SEP]"]] * 2  # `ansq`, one word


def test_predict_and_oip_answer_as_the_whole_text(http: httpx.Client, built: Built) -> None:
    logits, _ = own(built, TEXTS)
    answer = http.post(f"/models/{MODEL}/predict", json={"inputs": TEXTS})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"]["logits"], logits, atol=1e-4)
    tensor = {"name": "input_ids", "datatype": "BYTES", "shape": [len(TEXTS)], "data": TEXTS}
    answer = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": [tensor]})
    assert answer.status_code == 200, answer.text
    data = answer.json()["outputs"][0]["data"]
    np.testing.assert_allclose(np.reshape(data, logits.shape), logits, atol=1e-4)


def test_an_explanation_shows_the_whole_texts_tokens(http: httpx.Client, built: Built) -> None:
    _, tokens = own(built, TEXTS[:1])
    answer = http.post(f"/models/{MODEL}/explain", json={"inputs": TEXTS[:1]})
    assert answer.status_code == 200, answer.text
    explained = answer.json()["explanations"][0]
    assert explained["tokens"] == tokens[0][1:-1]  # [CLS] and [SEP] aside


def test_batch_scores_as_the_whole_text(built: Built, tmp_path: Path) -> None:
    logits, _ = own(built, TEXTS)
    key = f"batch/{MODEL}/input/layout.jsonl"
    built.store.put_bytes(key, "".join(json.dumps({"text": t}) + "\n" for t in TEXTS).encode())
    summary = run(built.store, tmp_path, key)
    assert summary["scored_rows"] == len(TEXTS), summary
    rows = read_jsonl(built.store, summary["output"])
    np.testing.assert_allclose([r["pred_logits"] for r in rows], logits, atol=1e-4)
