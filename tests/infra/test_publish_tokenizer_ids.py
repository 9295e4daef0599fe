"""`aiaas publish --tokenizer` compares the tokenizer's largest id with the word embedding's
rows, not only its count (HF text hunt)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.infra.test_publish_tokenizer import VOCAB, Built, built, refused

__all__ = ["built"]  # the fixture, shared


def test_token_ids_past_the_embedding_are_refused(built: Built, tmp_path: Path) -> None:
    """The count fitted (the same number of tokens) but one id lay past the table's rows: it
    was published, and every text holding that token was a 422 about token ids."""
    document = json.loads(built.tokenizer.read_text())
    vocab = document["model"]["vocab"]
    token = max((t for t in vocab if not t.startswith("[")), key=vocab.__getitem__)
    vocab[token] = VOCAB + 50
    sparse = tmp_path / "sparse.json"
    sparse.write_text(json.dumps(document))
    assert refused(tmp_path, built.model, "--tokenizer", str(sparse)) == (
        f"the tokenizer's ids go up to {VOCAB + 50} but the model's word embedding has {VOCAB} "
        f"rows (ids 0 to {VOCAB - 1}): this tokenizer.json is not the one the model was "
        "trained with"
    )
