"""A text model's new version whose tokenizer reads token ids as other tokens is said, at
publish, promote and rollout (hunt_journey6 1).

docs/text.md keeps token ids working for clients that tokenize themselves with `GET
/models/{name}/tokenizer`. A retrain with a new vocabulary answers raw text right (each version
tokenizes with its own), but such a client's ids are other tokens in the new version: a BPE
retrain of a WordPiece model was published, canaried, rolled out and promoted without a word,
while 73 of 200 ids rows got another label with a 200. Real parts: the test transformer and
WordPiece tokenizer.json files published by the real CLI, the ids made by the `tokenizers`
library and answered by the real predict handler.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from tokenizers import Tokenizer

from functions.runtime.registry import Registry
from infra.cli.main import main
from tests import hf_transformer
from tests.infra.test_capture_export_cells import capture
from tests.infra.test_publish_tokenizer import MODEL, publish, published_text_model

LABELS = ",".join(hf_transformer.LABELS)


def _reordered(path: Path) -> Path:
    """The same vocabulary (so the same embedding fits it), its words in reverse order."""
    words = list(dict.fromkeys(hf_transformer.WORDS))[::-1]
    tokens = [*hf_transformer.SPECIALS, *words, *hf_transformer.PIECES]
    return hf_transformer.tokenizer_json(path, tokens)


def _cli(store_uri: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["--store", store_uri, *argv])
    return code, out.getvalue(), err.getvalue()


def test_a_version_reading_ids_as_other_tokens_is_said(tmp_path: Path) -> None:
    built = published_text_model(tmp_path)  # version 1, its tokenizer in the vocabulary's order
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    assert "reads token ids" not in built.published
    other = _reordered(tmp_path / "reordered" / "tokenizer.json")
    code, out, err = publish(
        built.store, built.model, "--labels", LABELS, "--tokenizer", str(other)
    )
    assert code == 0, err
    where = hf_transformer.vocabulary().index("where")
    assert (
        f"warning: this version of {MODEL} reads token ids as other tokens than {MODEL}:1 "
        f'("where" is {where} there, ' in out
    ), out
    assert "GET /models/tiny-bert/tokenizer" in out and "send raw text" in out

    # The harm said: version 1's ids (from its tokenizer route's document) answered by 2.
    tokenizer = Tokenizer.from_file(str(built.tokenizer))
    encoded = tokenizer.encode("where is my parcel")
    ids = {"inputs": {"input_ids": [encoded.ids], "attention_mask": [encoded.attention_mask]}}
    ids["inputs"]["token_type_ids"] = [encoded.type_ids]
    registry = Registry(built.store)
    text = {"inputs": ["where is my parcel"]}
    one, two = (
        capture(registry, tmp_path, MODEL, [ids, text], route=f"/models/{{}}/versions/{v}/predict")
        for v in ("1", "2")
    )
    assert one[0]["outputs"] == one[1]["outputs"]  # 1 reads its own ids as the text
    assert two[0]["outputs"] != two[1]["outputs"]  # 2 reads 1's ids as another text

    code, out, err = _cli(built.store.uri, "promote", MODEL, "2", "--weight", "0.5")
    assert code == 0, err
    assert f"warning: version 2 of {MODEL} reads token ids as other tokens than {MODEL}:1" in err
    assert json.dumps("where") in err


def test_the_same_ids_are_not_said(tmp_path: Path) -> None:
    """The same tokenizer again (an int8 variant, a retrain on the same vocabulary): no word."""
    built = published_text_model(tmp_path)
    assert _cli(built.store.uri, "promote", MODEL, "1")[0] == 0
    same = hf_transformer.tokenizer_json(tmp_path / "same" / "tokenizer.json")
    code, out, err = publish(built.store, built.model, "--labels", LABELS, "--tokenizer", str(same))
    assert code == 0, err
    assert "reads token ids" not in out + err
    code, out, err = _cli(built.store.uri, "promote", MODEL, "2", "--weight", "0.5")
    assert code == 0, err
    assert "reads token ids" not in out + err
