"""Text models drift in what they read, not in token ids: each text becomes two numbers, its
length in tokens (up to the model's `max_length`, so longer texts gather in the top bin) and
the share of its tokens the vocabulary does not know. Those are binned like any feature."""

from __future__ import annotations

import numpy as np

from functions.runtime.tokenizer import PAD_ID, UNK_ID

TEXT_FEATURES = ("tokens", "unknown_share")
# Where a text model's baseline comes from, as `aiaas baseline` and `aiaas monitor` say it.
TEXT_BASELINE_SOURCE = (
    "drift baseline (lengths and unknown-word shares of held-out texts) is written by `aiaas "
    "train` only: a text model published from elsewhere is not monitored for drift"
)


def text_features(ids: np.ndarray) -> np.ndarray:
    """[N, 2] float64 (tokens, unknown share) of token ids [N, L] right-padded with PAD_ID."""
    ids = np.asarray(ids).reshape(len(ids), -1)
    tokens = (ids != PAD_ID).sum(1)
    unknown = (ids == UNK_ID).sum(1) / np.maximum(tokens, 1)
    return np.stack([tokens.astype(np.float64), unknown], axis=1)
