"""A long text costs what the model reads of it, and gives the same tokens as read whole.

A 6 MB text (the predict function's body limit) took the Hugging Face tokenizers ~4 s of CPU
here, and our own 0.18 s and a million strings, for the 16-512 tokens a model keeps. Both now
read a beginning of the text when it holds those tokens; these tests check the ids against the
same tokenizer reading each text whole, for texts made to fall on every edge of the window.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from functions.runtime import tokenizer
from functions.runtime.hf_tokenizer import HfInputs, HfTokenizer
from functions.runtime.tokenizer import WINDOW_CHARS_PER_TOKEN, Vocabulary, first_words, words
from tests import hf_gpt2, hf_roberta, hf_transformer

MAX_LENGTH = 16
WINDOW = MAX_LENGTH * WINDOW_CHARS_PER_TOKEN
PROSE = "Where is my parcel? It was due on Monday, and tracking says in transit. "


def texts() -> list[str]:
    """Long texts whose words fall on, before and after the window's edges."""
    out = [PROSE * 2000, "x" * 50_000, " " * 50_000 + "where is my parcel", "a " * 30_000]
    # The last words the model reads across each edge a window can have: a few words, then
    # spaces (which BERT's tokenizer and ours drop) up to the edge, then a long word over it.
    for before in (MAX_LENGTH - 1, MAX_LENGTH - 3):  # ours, BERT's ([CLS] and [SEP] around)
        words_before = "where " * before
        for shift in range(-4, 5):
            for edge in (WINDOW, WINDOW * 8, WINDOW * 64):
                gap = " " * (edge + shift - len(words_before))
                out.append(words_before + gap + "parcelparcelparcel tracking " * 200)
    out.append(("İ" * (WINDOW - 1)) + "where is my parcel " * 100)  # lowers to 2 characters
    out.append("word\u00a0" * 20_000)  # no-break spaces: no " " to cut before
    # Lines, tabs and CRLF but no space: BERT's tokenizer splits at each (a cut there), a
    # byte-level one keeps them in its tokens (no cut: read whole).
    out += ["parcel\n" * 20_000, "where\tis\r\nmy\fparcel\v" * 5_000, "\n" * WINDOW + "a b " * 900]
    # A vertical tab or form feed between two letters at the window's edge, one token past
    # what BERT reads: its normalizer deletes it (`ansq`, one [UNK] in the whole text), and a
    # beginning cut there ended in `an ##s`, `an` read instead (HF text hunt #2).
    head = (" " * 14).join(["where"] * (MAX_LENGTH - 3)).ljust(WINDOW - 3)
    out += [head + f"ans{joiner}q money refund " * 30 for joiner in ("\v", "\f", "\v\f", "\f ")]
    return out


def test_our_tokenizer_reads_the_same_first_words_of_long_texts(mocker: MockerFixture) -> None:
    for text in texts():
        assert first_words(text, MAX_LENGTH) == words(text)[:MAX_LENGTH], text[:40]
    vocabulary = Vocabulary(("<pad>", "<unk>", "where", "is", "my", "parcel"), MAX_LENGTH)
    want = vocabulary.ids(PROSE * 3)
    whole = mocker.spy(tokenizer, "words")
    assert vocabulary.ids(PROSE * 90_000) == want  # ~6.5 MB: 0.18 s to read whole
    assert whole.call_count == 0  # its first 256 characters were read


def _bert(path: Path) -> Path:
    return hf_transformer.tokenizer_json(path)


def _roberta(path: Path) -> Path:
    return hf_roberta.tokenizer_json(path)


def _gpt2_right(path: Path) -> Path:
    return hf_gpt2.tokenizer_json(path, direction="right", multiple_of=None)


@pytest.mark.parametrize("build", [_bert, _roberta, _gpt2_right], ids=lambda b: b.__name__[1:])
def test_hugging_face_ids_of_long_texts_are_those_of_the_whole_texts(
    build: object, tmp_path: Path
) -> None:
    from tokenizers import Tokenizer

    path = build(tmp_path / "tokenizer.json")  # type: ignore[operator]
    document = path.read_text()
    served = HfTokenizer(document, MAX_LENGTH, HfInputs("input_ids"))
    whole = Tokenizer.from_str(document)
    whole.enable_truncation(MAX_LENGTH)
    cut = 0
    for text in texts():
        want = whole.encode(text).ids
        got = served.encode([text])[0]
        assert got[: len(want)].tolist() == want, text[:40]
        # What was read: the text, or a beginning of it ending where a space follows.
        read = served._shortened(text)
        assert text.startswith(read) and (read == text or text[len(read)] in " \t\n\r\f\v")
        cut += read != text
    assert cut >= len(texts()) // 2
    # A 6.5 MB text (~4 s to tokenize whole here) is read from its first 256 characters.
    assert served._shortened(PROSE * 90_000) == (PROSE * 4)[: WINDOW + 1]


def test_a_long_text_of_lines_is_cut_at_a_new_line_by_a_whitespace_splitter(tmp_path: Path) -> None:
    """A 5.6 MB text of lines and no space was read whole by BERT's tokenizer (2.2 s), though
    its pre-tokenizer splits at every whitespace; a byte-level one still cuts at spaces only."""
    text = "parcel\n" * 800_000
    bert = HfTokenizer(_bert(tmp_path / "bert.json").read_text(), MAX_LENGTH, HfInputs("i"))
    assert bert._shortened(text) == text[: text.index("\n", WINDOW)]  # the first line past it
    roberta = HfTokenizer(_roberta(tmp_path / "r.json").read_text(), MAX_LENGTH, HfInputs("i"))
    assert roberta._shortened(text) == text


def test_left_truncation_reads_the_whole_text(tmp_path: Path) -> None:
    """A tokenizer keeping a text's last tokens: its end is read, as the whole tokenizer does."""
    from tokenizers import Tokenizer

    keep_end = {"max_length": MAX_LENGTH, "direction": "left"}
    path = hf_gpt2.tokenizer_json(
        tmp_path / "tokenizer.json", direction="right", multiple_of=None, truncation=keep_end
    )
    served = HfTokenizer(path.read_text(), MAX_LENGTH, HfInputs("input_ids"))
    assert served.side == "left" and served.beginnings.cut_at is None
    whole = Tokenizer.from_file(str(path))
    for text in texts():
        assert served.encode([text])[0].tolist()[:MAX_LENGTH] == whole.encode(text).ids[:MAX_LENGTH]


def test_a_pre_tokenizer_that_may_not_split_at_spaces_reads_the_whole_text(tmp_path: Path) -> None:
    """A Split on new lines keeps a line one piece: a 110-character line was one [UNK] in the
    whole text and many word pieces in a beginning cut before a space (another answer served
    than the tokenizer's own). Such a tokenizer is not cut; the whitespace ones still are."""
    from tokenizers import Tokenizer, pre_tokenizers

    document = _bert(tmp_path / "tokenizer.json").read_text()
    whole = Tokenizer.from_str(document)
    whole.pre_tokenizer = pre_tokenizers.Split("\n", "removed")
    served = HfTokenizer(whole.to_str(), MAX_LENGTH, HfInputs("input_ids"))
    assert served.beginnings.cut_at is None
    text = "\n".join(["x" * 110] * 4 + [" ".join(["a"] * 200)])
    whole.enable_truncation(MAX_LENGTH)
    assert served.encode([text])[0][:MAX_LENGTH].tolist() == whole.encode(text).ids
    sequence = Tokenizer.from_str(document)
    sequence.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Punctuation(), pre_tokenizers.WhitespaceSplit()]
    )
    assert (
        HfTokenizer(sequence.to_str(), MAX_LENGTH, HfInputs("input_ids")).beginnings.cut_at
        is not None
    )


def test_a_cut_the_text_after_it_would_change_is_not_taken(tmp_path: Path) -> None:
    """Where what follows a space joins a word before it (a normalizer's Replace across the
    space, an added token holding one), a beginning cut before that space ends in another word
    than the whole text's: that cut is passed over for the next one, or the text read whole."""
    from tokenizers import AddedToken, Tokenizer, normalizers

    document = _bert(tmp_path / "tokenizer.json").read_text()
    joined = Tokenizer.from_str(document)
    joined.normalizer = normalizers.Sequence(
        [normalizers.BertNormalizer(lowercase=True), normalizers.Replace("ans q", "ansq")]
    )
    added = Tokenizer.from_str(document)
    added.add_tokens([AddedToken("ans q", normalized=False)])
    head = (" " * 14).join(["where"] * (MAX_LENGTH - 3)).ljust(WINDOW - 3)
    text = head + "ans q money refund " * 200
    for whole in (joined, added):
        served = HfTokenizer(whole.to_str(), MAX_LENGTH, HfInputs("input_ids"))
        whole.enable_truncation(MAX_LENGTH)
        assert served.encode([text])[0].tolist() == whole.encode(text).ids
    assert HfTokenizer(joined.to_str(), MAX_LENGTH, HfInputs("i"))._shortened(text) != text
    assert HfTokenizer(added.to_str(), MAX_LENGTH, HfInputs("i")).beginnings.cut_at is None
