"""Token attributions for text models: Kernel SHAP with each token one group.

A token is absent when its id is replaced by the padding id. aiaas's text models mask padding out
of attention and out of the mean pooling, so this removes the token while the others keep their
positions (removing it outright would shift every later token's position embedding, and the
unknown-word id is itself a token the model has learned a meaning for). The base value is
therefore the model's answer on an all-padding row. That single row is the background, so an
explained text costs one model row per coalition: up to 11 tokens every coalition is enumerated
and the attributions are the exact Shapley values of that game; longer texts are sampled at the
default budget (2 x tokens + 2048 coalitions), all in one onnxruntime call per text.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.explain.explainer import (
    MAX_ROWS,
    Explanation,
    ModelTarget,
    check_budget,
    check_samples,
    stopped_past,
)
from functions.runtime.explain.kernel_shap import default_samples, explain_rows
from functions.runtime.explain.row_outputs import LearnedRate
from functions.runtime.input_columns import InputColumns
from functions.runtime.model import LoadedModel
from functions.runtime.text_input import TEXT_KINDS, TextInput, ids_only, text_input, texts
from functions.runtime.tokenizer import PAD_ID, UNK_ID, Vocabulary, first_words
from functions.runtime.validation import validate_inputs

MASKING = "padding id (the token removed, the others keep their positions)"


class TextExplainer:
    """Kernel SHAP over the tokens of each text, against the all-padding row."""

    def __init__(self, model: LoadedModel, max_seconds: float) -> None:
        text = text_input(model.manifest)
        if text is None:  # the plane routes only text models here
            raise ValueError(f"{model.ref} is not a text model")
        self.manifest = model.manifest
        self.text: TextInput = text
        vocabulary = model.text.vocabulary if model.text is not None else None
        if vocabulary is not None and not isinstance(vocabulary, Vocabulary):
            # A Hugging Face tokenizer (publish --tokenizer) feeds an attention mask and type
            # ids beside the ids, and its pad id is its own: `explain.hf_text` explains those.
            raise ValueError(f"{model.ref} has a Hugging Face tokenizer: use HfTextExplainer")
        self.vocabulary: Vocabulary | None = vocabulary
        spec = next(s for s in model.manifest.inputs if s.name == text.input)
        self.target = ModelTarget(model, InputColumns.of(spec))
        self.max_seconds = max_seconds
        self._per_token = LearnedRate()  # seconds per token position of a model row

    def explain(
        self, inputs: Mapping[str, np.ndarray], samples: int | None, patch: int | None = None
    ) -> Explanation:
        ids, tokens = self.token_rows(inputs)
        check_samples(samples, max(map(len, tokens), default=0), "token")
        counts = [
            min(samples or default_samples(len(t)), 2 ** len(t) - 2) if len(t) > 1 else 0
            for t in tokens
        ]
        width = ids.shape[1]
        check_budget(
            sum(counts) + len(ids),
            f"{len(ids)} text(s) of up to {width} tokens, {max(counts):,} coalitions for the "
            "longest, 1 all-padding background row",
            width * self._time_tokens(width),
            self.max_seconds,
        )
        began = time.perf_counter()
        background = np.full((1, width), PAD_ID, dtype=np.int64)
        with stopped_past(self.max_seconds, len(ids), "text(s)") as deadline:
            explained = explain_rows(
                self.target, ids, background, np.ones(1), [np.array([i]) for i in range(width)],
                samples, deadline=deadline,
            )  # fmt: skip
        scored = sum(r.coalitions for r in explained) + len(ids) + 1
        self._per_token.learn(time.perf_counter() - began, scored, width)
        parameters: dict[str, Any] = {
            "samples": max((r.coalitions for r in explained), default=0),
            "exact": all(r.exact for r in explained),
            "groups": "tokens",
            "masking": MASKING,
            "mask_id": PAD_ID,
            "seed": 0,
        }
        outputs = self.target.outputs(background)
        return Explanation("kernel_shap", parameters, [], outputs, explained, tokens)

    def token_rows(self, inputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, list[list[str]]]:
        """Token ids [N, T] (right-padded, T the longest text's tokens) and each text's tokens."""
        raw = self._texts(inputs)
        if raw is not None and self.vocabulary is not None:
            return self._from_texts(raw, self.vocabulary)
        if raw is not None:  # an older text model: its file carries no tokenizer
            raise InvalidInput(ids_only(self.text, f"{self.manifest.name}:{self.manifest.version}"))
        feeds = validate_inputs(self.manifest, inputs, max_batch_size=MAX_ROWS, typed=False)
        ids = np.asarray(feeds[self.text.input], dtype=np.int64)[:, : self.text.max_length]
        lengths = [int(np.flatnonzero(row != PAD_ID)[-1]) + 1 if row.any() else 0 for row in ids]
        ids = ids[:, : max(max(lengths), 1)]
        return ids, [self._names(row[:n]) for row, n in zip(ids, lengths, strict=True)]

    def _texts(self, inputs: Mapping[str, np.ndarray]) -> list[str] | None:
        return request_texts(inputs, self.text)

    def _from_texts(
        self, raw: list[str], vocabulary: Vocabulary
    ) -> tuple[np.ndarray, list[list[str]]]:
        vocabulary.refuse_wordless(raw, self.text.input)
        ids = vocabulary.encode(raw)
        # The tokenizer's own split, cut where it cuts: the strings of the ids the model reads.
        tokens = [first_words(text, self.text.max_length) for text in raw]
        return ids, tokens

    def _names(self, ids: np.ndarray) -> list[str]:
        """Token strings for ids sent as such (`#id` where the file carries no vocabulary)."""
        known = self.vocabulary.tokens if self.vocabulary is not None else ()
        return [known[i] if 0 <= i < len(known) else f"#{i}" for i in ids.tolist()]

    def _time_tokens(self, width: int) -> float:
        """Seconds per token position: from the last explanation, else timed on 64 rows of
        unknown words (a small batch, so the estimate errs high)."""
        probe = np.full((64, width), UNK_ID, dtype=np.int64)  # a real token everywhere
        return self._per_token.get(lambda: self.target.seconds_per_row(probe) / width)


def request_texts(inputs: Mapping[str, np.ndarray], text: TextInput) -> list[str] | None:
    """The raw texts of an explain request (under the ids input or the text field); None when
    it sends token ids."""
    for name in (text.input, text.field):
        value = inputs.get(name)
        if value is not None and value.dtype.kind in TEXT_KINDS:
            rows = texts(value, name)
            if len(rows) > MAX_ROWS:
                raise InvalidInput(
                    f"at most {MAX_ROWS} texts are explained in one request; got {len(rows)}"
                )
            return rows
    return None
