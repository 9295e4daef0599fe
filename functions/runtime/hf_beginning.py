"""Where a long text may end before a Hugging Face tokenizer reads it (`HfTokenizer`).

A tokenizer reads the whole of a text (~0.6 s a MB here) for the first `max_length` tokens it
keeps. A beginning `text[:end]` gives those same tokens, ids and offsets, when its pieces (the
text normalized, then pre-tokenized) are the whole text's first pieces, since the model
tokenizes each piece alone, and it holds more tokens than the model reads. So it ends:

- before a run of whitespace, at a character the pre-tokenizer splits at (`_splits_at_whitespace`,
  `_splits_at_spaces`) and the normalizer keeps: BERT's deletes a vertical tab or form feed,
  which joined `ans\\vq` into one word of the whole text (`[UNK]`) and left `an ##s` at the end
  of a beginning cut there (HF text hunt #2);
- at the start of such a run (a run is never split: byte-level tokens of 3 and 4 spaces
  differ);
- where no added token can match across it (`_added_across`);
- where the pieces of the CONTEXT characters before it are the first pieces of the same
  characters followed by CONTEXT more (`_agrees`): what follows the cut changes no piece before
  it. Every normalizer and pre-tokenizer of the `tokenizers` library looks at most a few
  characters ahead (a Unicode composition, a grapheme of under 6 bytes, a `\\s+(?!\\S)`); a
  `Replace` or `Split` whose own regex matches over CONTEXT characters is the one that could
  look further.

The beginning is taken only when the tokenizer cut it (its encoding overflows). A text cut at
its start (left truncation), one whose pre-tokenizer may not split at a space (none, a Split on
new lines, a regex), one with no such place past the window, is read whole.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A text past this many characters per token the model reads is tokenized from its beginning
# when that holds them all.
WINDOW_CHARS_PER_TOKEN = 16
# Characters either side of a cut whose pieces are compared (`Beginnings._agrees`): past the
# few a normalizer or pre-tokenizer of the library looks ahead; ~40 us a cut here.
CONTEXT = 32
# Places tried past each window before the next, larger window (each one `_agrees` refused).
TRIES = 8
ASCII_WHITESPACE = " \t\n\r\f\v"

# Pre-tokenizers that split a text at every space, so a beginning cut before a space holds the
# words the whole text has. Any other (a Split on new lines, Punctuation alone, a regex) keeps a
# text whole: a line of 110 characters was one [UNK] in the whole text and many word pieces cut.
SPLIT_AT_SPACES = frozenset({"Whitespace", "WhitespaceSplit", "BertPreTokenizer"})


def _splits_at_whitespace(pre: object) -> bool:
    """Whether every whitespace character splits, not only " " (no ByteLevel or Metaspace)."""
    if not isinstance(pre, dict):
        return False
    kind = pre.get("type")
    if kind == "Sequence":
        parts = pre.get("pretokenizers") or []
        return any(map(_splits_at_whitespace, parts)) and not any(
            isinstance(p, dict) and p.get("type") in ("ByteLevel", "Metaspace") for p in parts
        )
    return kind in SPLIT_AT_SPACES


def _splits_at_spaces(pre: object) -> bool:
    if not isinstance(pre, dict):
        return False
    kind = pre.get("type")
    if kind == "Sequence":
        return any(map(_splits_at_spaces, pre.get("pretokenizers") or []))
    if kind == "ByteLevel":
        return pre.get("use_regex", True) is True
    if kind == "Metaspace":
        return pre.get("split", True) is True
    if kind == "CharDelimiterSplit":
        return pre.get("delimiter") == " "
    return kind in SPLIT_AT_SPACES


def _added_across(tokens: list[Any]) -> bool:
    """Whether an added token may match across a cut: one holding whitespace beside other
    characters, or taking the whitespace after it (`rstrip`), which the whole text has."""
    for token in tokens:
        content = str(token.get("content", "")) if isinstance(token, dict) else ""
        spaces = sum(c.isspace() for c in content)
        if token.get("rstrip") or 0 < spaces < len(content):
            return True
    return False


def cut_chars(tokenizer: Any) -> str:
    """The characters a beginning may end before ("": texts are read whole)."""
    if tokenizer.pre_tokenizer is None:
        return ""
    document = json.loads(tokenizer.to_str())
    pre = document.get("pre_tokenizer")
    # ByteLevel and Metaspace keep a space in the next token: their cut stays at " ".
    chars = (
        ASCII_WHITESPACE if _splits_at_whitespace(pre) else " " if _splits_at_spaces(pre) else ""
    )
    if _added_across(document.get("added_tokens") or []):
        return ""
    normalizer = tokenizer.normalizer
    if normalizer is not None:  # one it deletes joins the words either side of it
        joined = normalizer.normalize_str("xx")
        chars = "".join(c for c in chars if normalizer.normalize_str(f"x{c}x") != joined)
    return chars


class Beginnings:
    """The beginning of a long text a tokenizer gives the same first tokens of."""

    def __init__(self, tokenizer: Any, max_length: int, chars: str) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.chars = chars
        self.cut_at = re.compile(f"[{re.escape(chars)}]+") if chars else None

    def of(self, text: str) -> str:
        """`text`, or a beginning of it that gives the same `max_length` tokens. Windows of
        WINDOW_CHARS_PER_TOKEN x max_length characters, then 8 and 64 times that, while shorter
        than the text: at worst (mostly spaces, just longer than the last window) ~2.1x its
        whole read."""
        window = self.max_length * WINDOW_CHARS_PER_TOKEN
        if len(text) <= window or self.cut_at is None:
            return text
        for _ in range(3):
            end = self._end(text, window)
            if end is None:
                break
            if self.tokenizer.encode(text[:end]).overflowing:  # more than it reads: cut
                return text[:end]
            window *= 8
            if window >= len(text):
                break
        return text

    def _end(self, text: str, start: int) -> int | None:
        """The first place a beginning may end, at a run of whitespace at or past `start`."""
        assert self.cut_at is not None
        for _ in range(TRIES):
            found = self.cut_at.search(text, start)
            if found is None:
                return None
            end = len(text[: found.start()].rstrip(self.chars))  # the run's own start
            if end and self._agrees(text, end):
                return end
            start = found.end()
        return None

    def _agrees(self, text: str, end: int) -> bool:
        """Whether the pieces of the CONTEXT characters before `end` are the first pieces of
        those characters with CONTEXT more: nothing after the cut changes a piece before it."""
        low = max(0, end - CONTEXT)
        before = self._pieces(text[low:end])
        return self._pieces(text[low : end + CONTEXT])[: len(before)] == before

    def _pieces(self, text: str) -> list[tuple[str, tuple[int, int]]]:
        normalizer = self.tokenizer.normalizer
        normalized = normalizer.normalize_str(text) if normalizer is not None else text
        pieces: list[tuple[str, tuple[int, int]]] = self.tokenizer.pre_tokenizer.pre_tokenize_str(
            normalized
        )
        return pieces
