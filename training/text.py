"""Building a text model's vocabulary from its training texts.

The tokenizer itself (rule, `Vocabulary`, ids) lives in `functions.runtime.tokenizer`, so the
training job and the serving runtime run the very same code; see its docstring for the rule.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from functions.runtime.text_input import is_blank
from functions.runtime.tokenizer import PAD, PAD_ID, TOKEN_PATTERN, UNK, UNK_ID, Vocabulary, words
from training.cells import RowPlaces
from training.errors import DataError

__all__ = [
    "PAD",
    "PAD_ID",
    "TOKEN_PATTERN",
    "UNK",
    "UNK_ID",
    "Vocabulary",
    "build_vocabulary",
    "text_column",
    "words",
]


def build_vocabulary(texts: Iterable[str], *, min_count: int, max_length: int) -> Vocabulary:
    """Tokens seen at least `min_count` times, most frequent first (ties alphabetical)."""
    counts = Counter(word for text in texts for word in words(text))
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return Vocabulary((PAD, UNK, *kept), max_length)


def text_column(values: np.ndarray, name: str, places: RowPlaces) -> np.ndarray:
    """A text column's cells, each refused (naming its row) where serving would refuse it:
    not text, blank (spaces or invisible characters), or no word the tokenizer reads."""
    for row, cell in enumerate(values):
        if not isinstance(cell, str) or is_blank(cell):
            raise DataError(f"text column {name!r} has an empty or non-text value at {places(row)}")
        if not words(cell):  # trained on as all padding, and refused when served
            raise DataError(
                f"text column {name!r} holds no word the tokenizer reads at {places(row)} "
                f"({cell[:40]!r}; it reads {TOKEN_PATTERN}, lowercased, and serving refuses such "
                "a text): drop the row or write the text in those characters"
            )
    return values.astype(object)
