"""Building a text model's vocabulary from its training texts.

The tokenizer itself (rule, `Vocabulary`, ids) lives in `functions.runtime.tokenizer`, so the
training job and the serving runtime run the very same code; see its docstring for the rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from functions.runtime.tokenizer import PAD, PAD_ID, TOKEN_PATTERN, UNK, UNK_ID, Vocabulary, words

__all__ = [
    "PAD",
    "PAD_ID",
    "TOKEN_PATTERN",
    "UNK",
    "UNK_ID",
    "Vocabulary",
    "build_vocabulary",
    "words",
]


def build_vocabulary(texts: Iterable[str], *, min_count: int, max_length: int) -> Vocabulary:
    """Tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
    counts = Counter(word for text in texts for word in words(text))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary((PAD, UNK, *kept), max_length)
