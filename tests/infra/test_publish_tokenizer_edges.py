"""Texts a user's own tokenizer keeps nothing of, and tokenizers that drop the model's specials.

A tokenizer.json that adds no special tokens (no post-processor) turns a text of format or
control characters into no token at all; a masked-mean model then divides by zero and answers
NaN. Such a text is as empty as a blank one: a 422 online and a reported row in a batch, never a
500 or a NaN written beside the row. The model is the test transformer (tests/hf_transformer.py)
sized to the tokenizer; serving is the runtime's own load of the published version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import InvalidInput
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import POSITIONS, publish

LABELS = ",".join(hf_transformer.LABELS)
PLAIN = ["[PAD]", "[UNK]", *dict.fromkeys(hf_transformer.WORDS), *hf_transformer.PIECES]
INVISIBLE = "\u200b\u2060\x00"  # zero-width space, word joiner, NUL: no visible character


def plain_tokenizer(path: Path) -> Path:
    """A WordPiece tokenizer.json with no special tokens added (no post-processor)."""
    vocab = {token: i for i, token in enumerate(PLAIN)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Path]:
    root = tmp_path_factory.mktemp("plain")
    model = hf_transformer.transformer(root / "m.onnx", rows=len(PLAIN), positions=POSITIONS)
    store = LocalStore(root / "store")
    tokenizer = plain_tokenizer(root / "tokenizer.json")
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    return store, root


def load(published: tuple[LocalStore, Path]) -> LoadedModel:
    store, root = published
    return ModelPool(Registry(store), ArtifactCache(store, root / "cache")).load_version(
        "tiny-bert", "1"
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (INVISIBLE, "row 1 is empty; send some text"),  # no visible character
        ("\u0301", "row 1 holds nothing the tokenizer keeps"),  # an accent its normalizer strips
    ],
)
def test_a_text_of_no_tokens_is_a_422_not_nan(
    published: tuple[LocalStore, Path], text: str, why: str
) -> None:
    model = load(published)
    fine = model.predict({"input_ids": np.array(["where is my parcel"])})["logits"]
    assert np.isfinite(fine).all()
    with pytest.raises(InvalidInput, match=why):
        model.predict({"input_ids": np.array(["where is my parcel", text])})


def test_a_batch_reports_invisible_text_and_scores_the_rest(
    published: tuple[LocalStore, Path], tmp_path: Path
) -> None:
    store, _ = published
    texts = ["where is my parcel", INVISIBLE, "the app crashes"]
    key = "batch/tiny-bert/input/texts.jsonl"
    store.put_bytes(key, "".join(json.dumps({"text": t}) + "\n" for t in texts).encode())
    summary = run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 1), summary
    rows = read_jsonl(store, summary["output"])
    assert [row["text"] for row in rows] == [texts[0], texts[2]]
    assert all(np.isfinite(row["pred_logits"]).all() for row in rows)
    errors = read_jsonl(store, summary["errors"])
    assert errors == [{"line": 2, "error": "'text' is empty; there is no text to score"}]


def test_a_batch_says_a_null_or_missing_text_is_no_text(
    published: tuple[LocalStore, Path], tmp_path: Path
) -> None:
    """A null text was told to send "" (a table's advice), which this model refuses too; a
    line without the field was "missing input 'text'"."""
    store, _ = published
    key = "batch/tiny-bert/input/gaps.jsonl"
    store.put_bytes(key, b'{"id": 1, "text": null}\n{"id": 2}\n{"id": 3, "text": "refund"}\n')
    summary = run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (1, 2), summary
    assert read_jsonl(store, summary["errors"]) == [
        {"line": 1, "error": "'text' is null; there is no text to score"},
        {"line": 2, "error": "missing the text field 'text'; there is no text to score"},
    ]


def test_a_batch_reports_text_the_tokenizer_keeps_nothing_of(
    published: tuple[LocalStore, Path], tmp_path: Path
) -> None:
    store, _ = published
    texts = ["where is my parcel", "\u0301", "the app crashes", "\u0301\u0300"]
    key = "batch/tiny-bert/input/accents.csv"
    store.put_bytes(key, ("text\n" + "".join(f"{t}\n" for t in texts)).encode())
    summary = run(store, tmp_path, key, chunk_rows=2)
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        2,
        2,
    ), summary
    why = "'text' holds nothing the tokenizer keeps; send some text"
    errors = read_jsonl(store, summary["errors"])
    assert errors == [{"line": 3, "error": why}, {"line": 5, "error": why}]
    scored = store.get_bytes(summary["output"]).decode().splitlines()
    assert [line.split(",")[0] for line in scored[1:]] == [texts[0], texts[2]]


def test_a_tokenizer_that_drops_the_models_special_tokens_is_refused(tmp_path: Path) -> None:
    """A training script that never set a post-processor: [CLS] and [SEP] are in the
    vocabulary (the embedding fits) but no text would carry them."""
    model = hf_transformer.transformer(tmp_path / "m.onnx", positions=POSITIONS)
    tokenizer = Tokenizer.from_file(str(hf_transformer.tokenizer_json(tmp_path / "bert.json")))
    tokenizer.post_processor = None
    tokenizer.save(str(tmp_path / "dropped.json"))
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(store, model, "--tokenizer", str(tmp_path / "dropped.json"))
    assert code != 0
    assert "holds [CLS] and [SEP] but tokenizer.json has no post_processor" in err, err
    assert not store.exists("models/tiny-bert/versions/1/manifest.json")
    # Trained without them: an explicit template says so, and is served as written.
    tokenizer.post_processor = processors.TemplateProcessing(single="$A")
    tokenizer.save(str(tmp_path / "plain.json"))
    code, _, err = publish(store, model, "--tokenizer", str(tmp_path / "plain.json"))
    assert code == 0, err


def test_an_export_that_fixed_the_sequence_length_is_named(tmp_path: Path) -> None:
    """torch.onnx.export (the tracer, dynamic_axes on both axes) of nn.TransformerEncoderLayer
    keeps the example's length in its attention Reshapes: the file runs on 7 tokens only."""
    torch = pytest.importorskip("torch")

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.words = torch.nn.Embedding(len(hf_transformer.vocabulary()), 16)
            self.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True)
            self.head = torch.nn.Linear(16, 3)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.layer(self.words(input_ids), src_key_padding_mask=attention_mask == 0)
            return self.head(hidden[:, 0])

    example = (torch.ones(2, 7, dtype=torch.int64), torch.ones(2, 7, dtype=torch.int64))
    axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}}
    torch.onnx.export(
        Classifier().eval(), example, str(tmp_path / "m.onnx"), dynamo=False,
        input_names=["input_ids", "attention_mask"], output_names=["logits"], dynamic_axes=axes,
    )  # fmt: skip
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(
        store, tmp_path / "m.onnx", "--tokenizer", str(tokenizer), "--max-length", "16"
    )
    assert code != 0
    assert "fails on a text of 3 tokens as well as on one of 16" in err, err
    assert "export with dynamo=True" in err


def test_a_batch_reports_a_lone_surrogate_and_scores_the_rest(
    published: tuple[LocalStore, Path], tmp_path: Path
) -> None:
    """JSON may escape half of a UTF-16 pair alone (`"\\ud83d"`: a JavaScript `slice` through an
    emoji, written by JSON.stringify). Python's json read it as a str no encoder takes: the
    tokenizer raised UnicodeEncodeError and the whole run failed, nothing scored."""
    store, _ = published
    key = "batch/tiny-bert/input/cut.jsonl"
    lines = [
        '{"id": 1, "text": "where is my parcel \\ud83d"}',  # an emoji cut in two
        '{"id": 2, "text": "refund \\ud83d\\ude00", "n": NaN}',  # a whole pair, json's NaN
        '{"id": 3, "text": "the app crashes", "n": NaN}',
    ]
    store.put_bytes(key, "\n".join(lines).encode() + b"\n")
    summary = run(store, tmp_path, key)
    assert (summary["status"], summary["scored_rows"], summary["failed_rows"]) == (
        "succeeded",
        2,
        1,
    ), summary
    rows = read_jsonl(store, summary["output"])
    assert [row["text"] for row in rows] == ["refund \U0001f600", "the app crashes"]
    [error] = read_jsonl(store, summary["errors"])
    assert error["line"] == 1
    assert "holds \\ud83d alone (half of a UTF-16 surrogate pair" in error["error"]
