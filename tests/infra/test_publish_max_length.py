"""`aiaas publish --tokenizer ... --max-length N` with an N no model can read: refused, nothing
written. `--max-length 0` used to be taken as not given (the model's 24 positions published
instead, silently), and a negative or 1 was told "cannot tell the longest text the model reads"."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.errors import InvalidInput
from functions.runtime.hf_tokenizer import HfInputs, HfTokenizer
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import publish, refused


@pytest.mark.parametrize("given", ["0", "1", "-3"])
def test_a_max_length_below_two_is_refused(tmp_path: Path, given: str) -> None:
    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=24)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    error = refused(tmp_path, model, "--tokenizer", str(tokenizer), "--max-length", given)
    assert error == (
        f"--max-length {given} is too short: a text model reads at least 2 tokens (e.g. "
        "[CLS] and [SEP])"
    )


def test_a_max_length_of_only_the_special_tokens_is_refused_saying_so(tmp_path: Path) -> None:
    """2 passed the check above, then the smoke test's text was refused as 'none of its
    characters is in the vocabulary, which has no unknown token' (this one has [UNK]): [CLS]
    and [SEP] filled both positions."""
    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=24)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    error = refused(tmp_path, model, "--tokenizer", str(tokenizer), "--max-length", "2")
    assert error == (
        "--max-length 2 is too short: this tokenizer adds 2 special tokens to every text ([CLS] "
        "and [SEP]), which would leave none of the text read; give at least 3"
    )
    published = LocalStore(tmp_path / "store")
    code, _, err = publish(published, model, "--tokenizer", str(tokenizer), "--max-length", "3")
    assert code == 0, err


def test_text_cut_to_its_special_tokens_is_not_said_to_lack_an_unknown_token(
    tmp_path: Path,
) -> None:
    """A version whose max_length holds only the special tokens (published before the check
    above): the refusal says so, not that the vocabulary has no unknown token."""
    document = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json").read_text()
    served = HfTokenizer(document, 2, HfInputs("input_ids"))
    with pytest.raises(InvalidInput) as refusal:
        served.feeds(["where is my parcel"], "input_ids")
    assert str(refusal.value) == (
        "input 'input_ids' row 0 holds nothing the tokenizer keeps (its special tokens fill the "
        "2 tokens the model reads); send some text"
    )


def test_a_max_length_other_than_the_files_truncation_is_warned(tmp_path: Path) -> None:
    """tokenizer.json truncating at 12 (what its user's encode, so training, read) and
    `--max-length 20`: texts of 13 to 20 tokens were served from tokens that encode never gives,
    said nowhere; `--help` named the position table before tokenizer.json as the default."""
    from tokenizers import Tokenizer

    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=24)
    path = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    own = Tokenizer.from_file(str(path))
    own.enable_truncation(max_length=12)
    own.save(str(path))
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, model, "--tokenizer", str(path), "--max-length", "20")
    assert code == 0, err
    assert "texts longer than 20 tokens are cut to the first 20" in out
    assert (
        "warning: tokenizer.json truncates at 12 (its own Tokenizer.encode, as the model was "
        "trained, mostly); --max-length 20 serves a text of 13 tokens or more from other tokens "
        "than that encode gives" in out
    ), out
    for argv in ((), ("--max-length", "12")):  # the file's own length: nothing to say
        code, out, err = publish(store, model, "--tokenizer", str(path), *argv)
        assert code == 0, err
        assert "texts longer than 12 tokens are cut to the first 12" in out
        assert "warning" not in out + err
