"""Token attributions for a user's transformer published with a Hugging Face tokenizer.json.

Kernel SHAP with each token one player, the estimator the other explainers use (`explain_game`).
The players are the tokens the model reads as the tokenizer split the text (truncated to
`max_length` as serving truncates); special tokens ([CLS], [SEP], <s>, </s>) are always present.
A token is absent when its attention mask is 0: what a padded batch gives the model at positions
it must not read, and what publish checked the model ignores (its padding check). Every id stays,
so every position does too, also in a RoBERTa export that numbers positions from the ids (pad
ids would shift the later tokens, as deleting them would). A model that reads no mask finds
padding from its ids, so there the token's id becomes the pad id, as it does in a text with no
special token (hidden by the mask, every token would leave nothing to read). The base value is
the text with every token absent: its special tokens seeing only each other. Each text's coalitions, with that base row and the full text, go to onnxruntime in one
call (cut at CHUNK_TOKENS token positions, so a long text's activations stay bounded).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.runtime.explain.explainer import (
    MAX_ROWS,
    Explanation,
    ModelTarget,
    check_budget,
    check_samples,
    stopped_past,
)
from functions.runtime.explain.kernel_shap import (
    Game,
    RowAttribution,
    check_deadline,
    default_samples,
    explain_game,
)
from functions.runtime.explain.row_outputs import LearnedRate
from functions.runtime.explain.text import request_texts
from functions.runtime.hf_tokenizer import HfTokenizer
from functions.runtime.input_columns import InputColumns
from functions.runtime.model import LoadedModel
from functions.runtime.text_input import TextInput, refuse_filled, text_input
from functions.runtime.validation import validate_inputs

# Token positions scored in one onnxruntime call: 2,114 rows of a 32-token text fit one call; a
# 512-token text's rows go 256 at a time (a transformer's activations grow with rows x length).
CHUNK_TOKENS = 131_072
PROBE_ROWS = 64  # rows of the longest text a first estimate times
MASK_BY_ATTENTION = (
    "attention mask 0 (the token hidden from every other; all ids and positions kept)"
)
MASK_BY_PAD_ID = "padding id (the model finds padding from its ids; the others keep positions)"
# A text with no special token (a tokenizer.json whose template adds none) masked whole reads
# nothing: a model pooling over its mask divided by zero, and every attribution was NaN, served
# as null with a 200. Its tokens are hidden by the padding id, the mask left on.
MASK_UNLESS_ONE_KEPT = (
    "attention mask 0, or the padding id in a text with no special token (every token hidden "
    "by the mask would leave the model nothing to read)"
)


@dataclass(frozen=True)
class TokenRow:
    """One text as the model reads it, and the positions of the tokens explained."""

    feeds: dict[str, np.ndarray]  # each input [1, L]
    players: np.ndarray  # positions of the tokens explained: not special, not padding
    tokens: list[str]
    offsets: list[list[int]] | None  # [start, end) of each token in the text (raw text only)

    @property
    def width(self) -> int:
        return int(next(iter(self.feeds.values())).shape[1])


def is_hf_text_model(model: LoadedModel) -> bool:
    return model.text is not None and isinstance(model.text.vocabulary, HfTokenizer)


class HfTextExplainer:
    """Kernel SHAP over the tokens of each text, against the text with every token masked."""

    def __init__(self, model: LoadedModel, max_seconds: float) -> None:
        text = text_input(model.manifest)
        if text is None or model.text is None or not isinstance(model.text.vocabulary, HfTokenizer):
            raise ValueError(f"{model.ref} is not a model with a Hugging Face tokenizer")
        self.model = model
        self.text: TextInput = text
        self.tokenizer: HfTokenizer = model.text.vocabulary
        spec = next(s for s in model.manifest.inputs if s.name == text.input)
        self.fixed = spec.shape[1] if spec.rank == 2 and spec.shape[1] > 0 else None
        self.target = ModelTarget(model, InputColumns.of(spec))
        self.max_seconds = max_seconds
        self._per_token = LearnedRate()  # seconds per token position of a model row
        self._specials = special_ids(self.tokenizer)

    def explain(
        self, inputs: Mapping[str, np.ndarray], samples: int | None, patch: int | None = None
    ) -> Explanation:
        rows = self.token_rows(inputs)
        check_samples(samples, max((len(r.players) for r in rows), default=0), "token")
        counts = [self._coalitions(len(r.players), samples) for r in rows]
        width = max(r.width for r in rows)
        check_budget(
            sum(counts) + 2 * len(rows),
            f"{len(rows)} text(s) of up to {width} tokens, {max(counts):,} coalitions for the "
            "longest, 2 more rows a text (every token masked, none)",
            width * self._time_tokens(rows),
            self.max_seconds,
        )
        began = time.perf_counter()
        explained: list[RowAttribution] = []
        with stopped_past(self.max_seconds, len(rows), "text(s)") as deadline:
            for row in rows:
                if explained:
                    check_deadline(deadline, len(explained))
                explained.append(explain_game(self._game(row), len(row.players), samples))
        scored = [(e.coalitions + 2, r.width) for e, r in zip(explained, rows, strict=True)]
        count = sum(n for n, _ in scored)
        positions = sum(n * w for n, w in scored)
        self._per_token.learn(time.perf_counter() - began, count, positions / count)
        return Explanation(
            "kernel_shap",
            self._parameters(explained, rows),
            [],
            self.target.names(len(explained[0].prediction)),
            _same_width(explained, max(len(r.players) for r in rows)),
            [r.tokens for r in rows],
            None if rows[0].offsets is None else [r.offsets or [] for r in rows],
        )

    def token_rows(self, inputs: Mapping[str, np.ndarray]) -> list[TokenRow]:
        raw = request_texts(inputs, self.text)
        if raw is None:
            return self._from_ids(inputs)
        names = self.tokenizer.inputs
        filled = [name for name in (names.mask, names.type_ids) if name]
        refuse_filled(set(inputs) - {self.text.input, self.text.field}, filled)
        return self._from_texts(raw)

    def _from_texts(self, raw: list[str]) -> list[TokenRow]:
        """Encoded as serving encodes (truncated to max_length, special tokens added)."""
        rows = []
        for encoding in self.tokenizer.encodings(raw, self.text.input, offsets=True):
            ids = np.asarray(encoding.ids)
            mask = np.asarray(encoding.attention_mask)
            players = np.flatnonzero((np.asarray(encoding.special_tokens_mask) == 0) & (mask == 1))
            feeds = self._feeds(ids, mask, np.asarray(encoding.type_ids))
            tokens = [encoding.tokens[i] for i in players]
            offsets = [list(encoding.offsets[i]) for i in players]
            rows.append(TokenRow(feeds, players, tokens, offsets))
        return rows

    def _from_ids(self, inputs: Mapping[str, np.ndarray]) -> list[TokenRow]:
        """Token ids sent as such (with the mask and type ids the model reads): the tokens are
        the ids the mask keeps (else the ones that are not padding) that are not special."""
        assert self.model.text is not None
        manifest = self.model.manifest
        feeds = validate_inputs(manifest, inputs, max_batch_size=MAX_ROWS, typed=False)
        ids = np.asarray(feeds[self.text.input])
        self.model.text.check_ids(ids)
        self.model.text.check_mask(feeds)
        names = self.tokenizer.inputs
        masks = feeds[names.mask] if names.mask else ids != self.tokenizer.pad_id
        types = feeds[names.type_ids] if names.type_ids else np.zeros_like(ids)
        rows = []
        for row, mask, type_ids in zip(ids, np.asarray(masks), np.asarray(types), strict=True):
            special = np.isin(row, list(self._specials))
            players = np.flatnonzero(~special & (mask != 0))
            token = self.tokenizer.tokenizer.id_to_token
            tokens = [token(int(i)) or f"#{i}" for i in row[players]]
            rows.append(TokenRow(self._feeds(row, mask, type_ids), players, tokens, None))
        return rows

    def _feeds(self, ids: np.ndarray, mask: np.ndarray, type_ids: np.ndarray) -> dict[str, Any]:
        """One row's feeds [1, L], cut after its last token unless the model's width is fixed."""
        kept = np.flatnonzero(mask != 0)
        length = self.fixed or (int(kept[-1]) + 1 if len(kept) else len(ids))
        names, dtypes = self.tokenizer.inputs, self.tokenizer.inputs.dtypes or {}
        feeds = {self.text.input: ids}
        if names.mask:
            feeds[names.mask] = mask
        if names.type_ids:
            feeds[names.type_ids] = type_ids
        return {
            k: np.asarray(v[None, :length], dtype=dtypes.get(k, "int64")) for k, v in feeds.items()
        }

    def _game(self, row: TokenRow) -> Game:
        """Keep masks [S, players] -> the explained values of the text with the other tokens
        masked (attention mask 0, padding id)."""
        names = self.tokenizer.inputs

        by_mask = names.mask is not None and _keeps_one(row, names.mask)

        def game(keep: np.ndarray) -> np.ndarray:
            absent = np.zeros((len(keep), row.width), dtype=bool)
            absent[:, row.players] = ~keep
            feeds = {k: np.repeat(v, len(keep), axis=0) for k, v in row.feeds.items()}
            if by_mask and names.mask:  # the ids stay: a RoBERTa export numbers positions from them
                feeds[names.mask][absent] = 0
            else:  # the model finds padding from its ids, or nothing would stay to be read
                feeds[self.text.input][absent] = self.tokenizer.pad_id
            return self._score(feeds, len(keep))

        return game

    def _score(self, feeds: dict[str, np.ndarray], count: int) -> np.ndarray:
        width = next(iter(feeds.values())).shape[1]
        step = max(1, CHUNK_TOKENS // width)
        if count <= step:
            return self.target.score_feeds(feeds, count)
        return np.concatenate(
            [
                self.target.score_feeds({k: v[i : i + step] for k, v in feeds.items()}, n)
                for i in range(0, count, step)
                for n in [min(step, count - i)]
            ]
        )

    def _coalitions(self, players: int, samples: int | None) -> int:
        return min(samples or default_samples(players), 2**players - 2) if players > 1 else 0

    def _parameters(self, explained: list[RowAttribution], rows: list[TokenRow]) -> dict[str, Any]:
        mask = self.tokenizer.inputs.mask
        masking: dict[str, Any] = (
            {"masking": MASK_BY_ATTENTION}
            if mask and all(_keeps_one(r, mask) for r in rows)
            else {
                "masking": MASK_BY_PAD_ID if not mask else MASK_UNLESS_ONE_KEPT,
                "mask_id": self.tokenizer.pad_id,
            }
        )
        return {
            "samples": max((r.coalitions for r in explained), default=0),
            "exact": all(r.exact for r in explained),
            "groups": "tokens",
            **masking,
            "special_tokens": "never masked",
            "max_length": self.text.max_length,
            "seed": 0,
        }

    def _time_tokens(self, rows: list[TokenRow]) -> float:
        """Seconds per token position: from the last explanation, else timed on PROBE_ROWS
        copies of the longest text (a small batch, so the estimate errs high)."""
        return self._per_token.get(lambda: self._probe(rows))

    def _probe(self, rows: list[TokenRow]) -> float:
        longest = max(rows, key=lambda r: r.width)
        feeds = {k: np.repeat(v, PROBE_ROWS, axis=0) for k, v in longest.feeds.items()}
        self.target.score_feeds(feeds, PROBE_ROWS)  # pays for set-up
        began = time.perf_counter()
        self.target.score_feeds(feeds, PROBE_ROWS)
        return (time.perf_counter() - began) / (PROBE_ROWS * longest.width)


def _keeps_one(row: TokenRow, mask: str) -> bool:
    """Whether a position the model reads stays when every token explained is hidden (a
    special token such as [CLS]), so that hiding tokens by the attention mask leaves it one."""
    attended = np.flatnonzero(row.feeds[mask][0] != 0)
    return bool(len(np.setdiff1d(attended, row.players)))


def special_ids(tokenizer: HfTokenizer) -> frozenset[int]:
    """Ids that are never explained when token ids are sent: the tokens added as special, the
    ones the post-processor's template adds (a WordPiece vocabulary's [CLS] and [SEP] are often
    plain entries only the template names) and the pad id."""
    own = tokenizer.tokenizer
    added = {i for i, token in own.get_added_tokens_decoder().items() if token.special}
    empty = own.encode("", add_special_tokens=True)
    template = {i for i, s in zip(empty.ids, empty.special_tokens_mask, strict=True) if s}
    return frozenset(added | template | {tokenizer.pad_id})


def _same_width(explained: list[RowAttribution], players: int) -> list[RowAttribution]:
    """Each text's attributions padded with 0 to the longest's tokens (one typed tensor)."""
    return [
        dataclasses.replace(e, values=np.pad(e.values, ((0, players - len(e.values)), (0, 0))))
        for e in explained
    ]
