"""Text models drift in what they read, not in token ids: each text becomes two numbers, its
length in tokens (up to the model's `max_length`, so longer texts gather in the top bin) and
the share of its tokens the vocabulary does not know. Those are binned like any feature.

Both are read with the model's own vocabulary (`TokenIds`): our tokenizer pads with 0 and
knows no word as 1; a user's tokenizer.json has its own ids (bert-base pads with [PAD] 0 and
knows no word as [UNK] 100, RoBERTa pads with <pad> 1), and a byte-level BPE (GPT-2's) has
no unknown token at all: its unknown share is 0 for every text. Where the model reads an attention mask, its tokens are
those the mask keeps, wherever the padding is and whatever token pads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from functions.runtime.hf_tokenizer import HfTokenizer
from functions.runtime.text_input import TextFeeds
from functions.runtime.tokenizer import PAD_ID, UNK_ID

TEXT_FEATURES = ("tokens", "unknown_share")
UNKNOWN = TEXT_FEATURES[1]
# Where a text model's baseline comes from, as `aiaas baseline` and `aiaas monitor` say it.
TEXT_BASELINE_SOURCE = (
    "drift baseline (the lengths in tokens and unknown-token shares of texts like its "
    "training's) is written by `aiaas train`, or by `aiaas baseline {ref} TEXTS` from a file of "
    "such texts (a .csv with its {field!r} column, a .jsonl of records, or one text a line)"
)
NO_UNKNOWN = (
    "{ref}'s tokenizer has no unknown token (a byte-level BPE reads every text), so "
    "unknown_share is 0 for every text and cannot drift: watch tokens and (prediction)"
)


@dataclass(frozen=True)
class TokenIds:
    """What the features read of a vocabulary: its pad id, its unknown token's id (None: it
    has none) and the input holding the attention mask, if the model reads one."""

    pad: int = PAD_ID
    unknown: int | None = UNK_ID
    mask: str | None = None


OWN = TokenIds()  # our tokenizer's (functions/runtime/tokenizer.py)


def token_ids(text: TextFeeds) -> TokenIds:
    """The ids of the tokenizer `text` runs: a tokenizer.json's own, else ours."""
    tokenizer = text.vocabulary
    if isinstance(tokenizer, HfTokenizer):
        return TokenIds(tokenizer.pad_id, tokenizer.unk_id, tokenizer.inputs.mask)
    return OWN


def text_features(
    ids: np.ndarray, special: TokenIds = OWN, mask: np.ndarray | None = None
) -> np.ndarray:
    """[N, 2] float64 (tokens, unknown share) of token ids [N, L]: a token is an id other than
    the pad id, or where given, one the attention `mask` keeps."""
    ids = np.asarray(ids).reshape(len(ids), -1)
    kept = ids != special.pad
    if mask is not None and np.shape(mask) == ids.shape:
        kept = np.asarray(mask) != 0
    tokens = kept.sum(1)
    unknown = np.zeros(len(ids), dtype=np.float64)
    if special.unknown is not None:
        unknown = ((ids == special.unknown) & kept).sum(1) / np.maximum(tokens, 1)
    return np.stack([tokens.astype(np.float64), unknown], axis=1)


def fed_features(feeds: Mapping[str, np.ndarray], ids: str, special: TokenIds) -> np.ndarray:
    """`text_features` of a request's model feeds (texts already tokenized, or ids sent)."""
    mask = feeds.get(special.mask) if special.mask is not None else None
    return text_features(feeds[ids], special, mask)
