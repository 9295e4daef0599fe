"""The tokenizer text models ship with: lowercase word tokens mapped through `vocab.json`.

Serving contract (also in training/README.md): a client lowercases the text, takes the
matches of `TOKEN_PATTERN` in order, maps each to its index in `tokens` (`UNK_ID` when absent),
keeps at most `max_length` ids and right-pads every row of a batch with `PAD_ID` to a common
length. The model ignores padding and anything past `max_length`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOKEN_PATTERN = r"[a-z0-9']+"  # noqa: S105 - a regex, not a secret
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_TOKEN = re.compile(TOKEN_PATTERN)


def words(text: str) -> list[str]:
    """The tokens of `text` as the model sees them."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id (0 = padding, 1 = unknown) and the longest sequence the model reads."""

    tokens: tuple[str, ...]
    max_length: int

    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})

    def ids(self, text: str) -> list[int]:
        """Token ids of `text`, at most `max_length` of them."""
        return [self.index.get(word, UNK_ID) for word in words(text)][: self.max_length]

    def encode(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """int64 [len(texts), length] token ids, right-padded with PAD_ID."""
        rows = [self.ids(text) for text in texts]
        width = length or max((len(r) for r in rows), default=1) or 1
        out = np.full((len(rows), width), PAD_ID, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : min(len(row), width)] = row[:width]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "tokenizer": "lowercase-regex-words",
            "pattern": TOKEN_PATTERN,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "max_length": self.max_length,
            "tokens": list(self.tokens),
        }


def build_vocabulary(texts: Iterable[str], *, min_count: int, max_length: int) -> Vocabulary:
    """Tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
    counts = Counter(word for text in texts for word in words(text))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary((PAD, UNK, *kept), max_length)
