"""Tokenizer.json kinds beyond BERT's WordPiece and RoBERTa's byte-level BPE, published with the
test transformer (tests/hf_transformer.py) and served by the runtime's own load.

- A BPE with no unknown token (a vocabulary trained on ASCII text only): a character it has
  no piece for vanishes, so a text of only such characters (CJK) encodes to no token although
  its normalizer kept every character. Online that is a 422 saying so; in a batch the row is
  reported and the rest scored, as the docs promise for texts the tokenizer keeps nothing of.
- The same with Metaspace (SentencePiece-style `▁word` pieces): an emoji or CJK text alone
  encodes to `▁`, the word's space mark with its characters dropped. That is no text kept
  either; it was answered 200 with one label for every such text.
- Truncation stored in tokenizer.json with `direction: left` (its user keeps a text's end):
  served ids are the user's own `Tokenizer.encode`'s, cut at the same end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import InvalidInput
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.batch_support import read_jsonl, run
from tests.infra.test_publish_tokenizer import POSITIONS, publish

CORPUS = [
    "where is my parcel please",
    "my package never arrived and tracking says in transit",
    "i was charged twice on my card please refund my money",
    "the app crashes when i open settings",
] * 3
KEEP = 8  # tokenizer.json's own truncation: max_length 8, keeping the end
CJK = "我的包裹没有到"


def _bpe_without_unk(normalizer: Any, pre_tokenizer: Any, specials: tuple[str, str]) -> Tokenizer:
    """A BPE trained on CORPUS with no unknown token, `<first> $A <second>` (unsaved)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=120, special_tokens=["<pad>", *specials], show_progress=False
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    ids = [(t, tokenizer.token_to_id(t)) for t in specials]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{specials[0]} $A {specials[1]}", special_tokens=ids
    )
    return tokenizer


def no_unk_tokenizer(path: Path) -> Path:
    """A BPE without an unknown token, <cls> $A <sep>, truncating on the left."""
    tokenizer = _bpe_without_unk(
        normalizers.Lowercase(), pre_tokenizers.Whitespace(), ("<cls>", "<sep>")
    )
    tokenizer.enable_truncation(KEEP, direction="left")
    tokenizer.save(str(path))
    return path


def metaspace_tokenizer(path: Path) -> Path:
    """A BPE without an unknown token behind a Metaspace pre-tokenizer, <s> $A </s>."""
    tokenizer = _bpe_without_unk(normalizers.NFKC(), pre_tokenizers.Metaspace(), ("<s>", "</s>"))
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalStore, Path, str]:
    root = tmp_path_factory.mktemp("kinds")
    return publish_with(root, no_unk_tokenizer(root / "tokenizer.json"))


def publish_with(root: Path, tokenizer: Path) -> tuple[LocalStore, Path, str]:
    """A transformer as wide as `tokenizer`'s vocabulary, published with it into root/store."""
    rows = Tokenizer.from_file(str(tokenizer)).get_vocab_size(with_added_tokens=True)
    model = hf_transformer.transformer(root / "m.onnx", rows=rows, positions=POSITIONS)
    store = LocalStore(root / "store")
    labels = ",".join(hf_transformer.LABELS)
    code, out, err = publish(store, model, "--labels", labels, "--tokenizer", str(tokenizer))
    assert code == 0, err
    return store, root, out


def load(published: tuple[LocalStore, Path, str]) -> LoadedModel:
    store, root, _ = published
    return ModelPool(Registry(store), ArtifactCache(store, root / "cache")).load_version(
        "tiny-bert", "1"
    )


def test_text_the_vocabulary_has_no_piece_for_is_a_422_that_says_so(
    published: tuple[LocalStore, Path, str],
) -> None:
    with pytest.raises(
        InvalidInput,
        match=r"row 1 holds nothing the tokenizer keeps \(none of its characters is in the vocabulary",
    ):
        load(published).predict({"input_ids": np.array(["where is my parcel", CJK])})


def test_a_batch_reports_text_the_vocabulary_has_no_piece_for(
    published: tuple[LocalStore, Path, str], tmp_path: Path
) -> None:
    store = published[0]
    texts = ["where is my parcel", CJK, "the app crashes"]
    key = "batch/tiny-bert/input/texts.jsonl"
    store.put_bytes(key, "".join(json.dumps({"text": t}) + "\n" for t in texts).encode())
    summary = run(store, tmp_path, key)
    assert (summary["scored_rows"], summary["failed_rows"]) == (2, 1), summary
    assert [row["text"] for row in read_jsonl(store, summary["output"])] == [texts[0], texts[2]]
    [error] = read_jsonl(store, summary["errors"])
    assert error["line"] == 2 and "holds nothing the tokenizer keeps" in error["error"], error


def test_truncation_on_the_left_in_tokenizer_json_keeps_the_texts_end(
    published: tuple[LocalStore, Path, str],
) -> None:
    store, root, out = published
    assert f"cut to their last {KEEP}" in out, out
    text = "my package never arrived and tracking says i was charged twice"
    own = Tokenizer.from_file(str(root / "tokenizer.json")).encode(text)  # the user's own ids
    model = load(published)
    assert model.text is not None
    served = model.text.vocabulary.encode([text])
    assert served.tolist() == [own.ids]
    manifest = json.loads(store.get_bytes("models/tiny-bert/versions/1/manifest.json"))
    assert "left side" in manifest["preprocessing"]["truncation"]


@pytest.mark.parametrize("text", ["\U0001f600", CJK, "\u05e9\u05dc\u05d5\u05dd \U0001f600"])
def test_metaspace_text_of_unseen_characters_is_a_422_not_one_label(
    tmp_path: Path, text: str
) -> None:
    tokenizer = metaspace_tokenizer(tmp_path / "tokenizer.json")
    assert "\u2581" in Tokenizer.from_file(str(tokenizer)).encode(text).tokens  # all it keeps
    loaded = load(publish_with(tmp_path, tokenizer))
    answered = loaded.predict({"input_ids": np.array(["where is my parcel", f"{text} parcel"])})
    assert len(next(iter(answered.values()))) == 2  # a known word beside them is read
    with pytest.raises(InvalidInput, match=r"row 1 holds nothing the tokenizer keeps \(none of"):
        loaded.predict({"input_ids": np.array(["where is my parcel", text])})
    assert loaded.text is not None
    assert not loaded.text.vocabulary.keeps(text)  # a batch file's screen reports the row
    assert loaded.text.vocabulary.keeps(f"{text} parcel")
