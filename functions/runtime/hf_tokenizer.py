"""Hugging Face `tokenizer.json` tokenizers, for transformer models published with one.

`aiaas publish --tokenizer tokenizer.json` stores the file beside the model (for clients that
tokenize themselves) and embeds the same document in the model file as the ONNX metadata entry
`aiaas.hf_tokenizer`, as our own text models carry theirs: the model's sha256 vouches for it,
loading needs no second fetch, and every place that opens a model file gets its tokenizer.

Rule (documented in docs/text.md): the tokenizer's own normalizer, pre-tokenizer, model and
post-processor (special tokens such as [CLS] ... [SEP]); a text longer than `max_length` tokens,
special tokens included, is cut at the end (`longest_first`, right side, as a `transformers`
pipeline with `truncation=True` does), or at the start when tokenizer.json's own truncation says
`direction: left` (its user keeps a text's end, and their own `encode` does). A batch is padded
as tokenizer.json's own padding says (its side, pad id, pad type id, `pad_to_multiple_of`, a
fixed length), as its user's `encode_batch` pads: decoder classifiers (GPT-2 style, pooling the
last position) are trained left-padded. With no padding in the file, rows are right-padded with
the pad id to the longest; an ids input of fixed width is always padded to that width. A fixed
length gives way to the batch's longest row (`to_longest`) when publish saw the model answer the
same either way (its manifest's `pad_to_longest`): a short text then costs its own width. The
attention mask and token type ids are filled when the model has those inputs.

Needs the `tokenizers` package (the `text` extra); it is imported only to load such a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.hf_beginning import Beginnings, cut_chars
from functions.runtime.text_input import is_blank

KIND = "huggingface"
METADATA_KEY = "aiaas.hf_tokenizer"
# Pad tokens by the names common tokenizers give them, when tokenizer.json sets no padding.
PAD_TOKENS = ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>")


# The space marks of Metaspace (`▁`) and byte-level (`Ġ`) tokens, read as the spaces they are.
_SPACE_MARKS = str.maketrans({"\u2581": " ", "\u0120": " "})


class HfTokenizerError(ValueError):
    """A tokenizer.json that cannot be loaded, or a missing `tokenizers` package."""


@dataclass(frozen=True)
class HfInputs:
    """The model inputs the tokenizer fills, with their dtypes: ids, and mask / type ids if any."""

    ids: str
    mask: str | None = None
    type_ids: str | None = None
    dtypes: Mapping[str, str] | None = None

    @classmethod
    def from_preprocessing(cls, pre: Mapping[str, Any], ids: str) -> HfInputs:
        return cls(ids, pre.get("mask_input"), pre.get("type_ids_input"), pre.get("input_dtypes"))


def load_tokenizer(document: str) -> Any:
    """A `tokenizers.Tokenizer` from a tokenizer.json document; HfTokenizerError if it is not one."""
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError as exc:
        raise HfTokenizerError(
            "Hugging Face tokenizers need the tokenizers package: pip install 'aiaas[text]'"
        ) from exc
    try:
        return Tokenizer.from_str(document)
    except Exception as exc:  # the Rust side raises untyped errors
        raise HfTokenizerError(f"not a Hugging Face tokenizer.json: {exc}") from None


def pad_id(tokenizer: Any) -> int:
    """The id rows are padded with: tokenizer.json's padding, else a pad token, else 0."""
    padding = tokenizer.padding
    if padding:
        return int(padding["pad_id"])
    for token in PAD_TOKENS:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def padding_rule(
    tokenizer: Any, max_length: int, width: int | None, own_padding: bool = True
) -> dict[str, Any]:
    """`enable_padding`'s arguments: tokenizer.json's own padding (side, pad id and token, pad
    type id, multiple, fixed length), as its user's `encode_batch` pads, else right with
    `pad_id`; an ids input of fixed `width` takes exactly that width (a multiple past it would
    not fit the model). A fixed length under max_length becomes max_length: padding never cuts,
    so a longer text would leave the batch's rows of different widths. Without `own_padding`
    (a model published before 2026-12-02, whose publish checked it right-padded only) the
    file's side, type id, multiple and length are ignored, as serving then ignored them."""
    own = (tokenizer.padding or {}) if own_padding else {}
    fixed = own.get("length")
    rule: dict[str, Any] = {
        "direction": "left" if own.get("direction") == "left" else "right",
        "pad_id": pad_id(tokenizer),
        "pad_type_id": int(own.get("pad_type_id") or 0),
        "length": width or (max(fixed, max_length) if fixed else None),
        "pad_to_multiple_of": None if width else own.get("pad_to_multiple_of"),
    }
    if own.get("pad_token"):  # only the pad's token string, which explanations never show
        rule["pad_token"] = own["pad_token"]
    return rule


def padded_width(max_length: int, rule: Mapping[str, Any]) -> int:
    """The widest row the tokenizer gives: the longest text's max_length, or the fixed length,
    rounded up to the multiple, so the ids its own users send may be as wide."""
    width = max(max_length, rule.get("length") or 0)
    multiple = rule.get("pad_to_multiple_of") or 1
    return -(-width // multiple) * multiple


def truncation_side(tokenizer: Any) -> str:
    """Where a long text is cut: "right" (its first tokens kept), or "left" when tokenizer.json's
    own truncation says so (its user kept a text's last tokens in training)."""
    own = tokenizer.truncation or {}
    return "left" if own.get("direction") == "left" else "right"


def unk_id(tokenizer: Any, document: str) -> int | None:
    """The id of the token the model gives a piece its vocabulary lacks: the model's
    `unk_token` (WordPiece, BPE, WordLevel) or `unk_id` (Unigram) resolved in the vocabulary
    and added tokens; None when it has none (byte-level BPE such as GPT-2's or RoBERTa's
    reads every byte, so no text is unknown) or names a token the vocabulary lacks."""
    token = getattr(tokenizer.model, "unk_token", None)
    if token is None and type(tokenizer.model).__name__ == "Unigram":  # not exposed: the file's
        found = json.loads(document).get("model", {}).get("unk_id")
        return found if isinstance(found, int) and not isinstance(found, bool) else None
    found = tokenizer.token_to_id(token) if isinstance(token, str) else None
    return None if found is None else int(found)


class HfTokenizer:
    """Texts -> the feeds of a transformer model (ids, attention mask, token type ids)."""

    kind = KIND

    def __init__(
        self,
        document: str,
        max_length: int,
        inputs: HfInputs,
        width: int | None = None,
        own_padding: bool = True,
        to_longest: bool = False,
    ) -> None:
        self._document = document.encode("utf-8")
        self.inputs = inputs
        self.max_length = max_length
        self.tokenizer = load_tokenizer(document)
        self.pad_id = pad_id(self.tokenizer)
        self.side = truncation_side(self.tokenizer)
        self.tokenizer.enable_truncation(max_length, strategy="longest_first", direction=self.side)
        self.padding = padding_rule(self.tokenizer, max_length, width, own_padding)
        # The widest ids its own users' encode_batch gives, accepted as sent even when serving
        # pads shorter (a fixed length that gives way to the longest row).
        self.width = padded_width(max_length, self.padding)
        if to_longest and width is None:  # within the file's width: rows <= max_length <= it
            self.padding = {**self.padding, "length": None}
        self.tokenizer.enable_padding(**self.padding)
        # Without character offsets, which serving never reads: ~15% less per batch
        # (tokenizers >= 0.21; older versions have the plain one only).
        self._encode_batch = getattr(
            self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch
        )
        self._blanks: dict[int, bool] = {}  # token id -> no visible character (`_blank`)

    def document(self) -> bytes:
        """The tokenizer.json as published, for clients that tokenize themselves."""
        return self._document

    @cached_property
    def unk_id(self) -> int | None:
        """The unknown token's id (None: the tokenizer has none), read when drift first needs
        it rather than at every cold start (a Unigram file is parsed again for it)."""
        return unk_id(self.tokenizer, self._document.decode("utf-8"))

    def keeps(self, text: str) -> bool:
        """Whether the tokenizer leaves a token of `text`: batch files' screen (~1 us a text:
        the normalizer; a tokenizer with no unknown token, which drops a character its
        vocabulary lacks, encodes the text too); `feeds` checks the encoded rows themselves."""
        if not self._normalizer_keeps(text):
            return False
        if self.unk_id is not None:
            return True
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        return bool(encoding.overflowing) or not all(map(self._blank, encoding.ids))

    def _blank(self, token_id: int) -> bool:
        """Whether a token holds no visible character (Metaspace's `▁`, ByteLevel's `Ġ`): a
        tokenizer with no unknown token encodes an emoji alone as `▁` (the word's space mark,
        its character dropped), which is no text kept. Memoized by id as texts meet them (a
        scan of a 300k vocabulary took 1.3 s)."""
        blank = self._blanks.get(token_id)
        if blank is None:
            token = self.tokenizer.id_to_token(token_id) or ""
            blank = self._blanks[token_id] = is_blank(token.translate(_SPACE_MARKS))
        return blank

    def _kept(self, encoding: Any) -> bool:
        """Whether an encoding holds a token of its text: one not special nor padding (the
        mask's 0s), and with no unknown token one with a visible character (`_blank`)."""
        special = encoding.special_tokens_mask
        if 0 not in special:
            return False
        if self.unk_id is not None:
            return True
        ids, start = encoding.ids, special.index(0)  # past left padding
        if not self._blank(ids[start]) or encoding.overflowing:  # its first token, mostly;
            return True  # a text cut after its leading spaces had more to read
        return any(s == 0 and not self._blank(i) for i, s in zip(ids, special, strict=True))

    def _normalizer_keeps(self, text: str) -> bool:
        normalizer = self.tokenizer.normalizer
        return normalizer is None or not is_blank(normalizer.normalize_str(text))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Token ids [len(texts), width] as the tokenizer's own encode_batch gives them."""
        return self.feeds(texts, self.inputs.ids)[self.inputs.ids]

    def encodings(self, texts: Sequence[str], ids_input: str, offsets: bool = False) -> list[Any]:
        """The tokenizer's encodings of `texts` (truncated, padded), with character offsets
        when asked (explanations show them); a 422 for a text it keeps nothing of."""
        encode = self.tokenizer.encode_batch if offsets else self._encode_batch
        encodings: list[Any] = encode([self._shortened(t) for t in texts], add_special_tokens=True)
        for index, encoding in enumerate(encodings):
            if not self._kept(encoding):  # special tokens, padding (and blank marks) only
                why = self._why_nothing(texts[index])
                raise InvalidInput(
                    f"input '{ids_input}' row {index} holds nothing the tokenizer keeps ({why}); "
                    "send some text"
                )
        return encodings

    def _why_nothing(self, text: str) -> str:
        """Why the tokenizer kept no token of `text` (on the refusal path only)."""
        if not self._normalizer_keeps(text):
            return "its normalizer removed every character"
        if self.unk_id is None:
            return "none of its characters is in the vocabulary, which has no unknown token to stand in"
        return (  # an unknown token stands in for any character: the special tokens took it all
            f"its special tokens fill the {self.max_length} tokens the model reads"
        )

    def _shortened(self, text: str) -> str:
        """`text`, or a beginning of it that gives the same `max_length` tokens (`Beginnings`)."""
        return self.beginnings.of(text)

    @cached_property
    def beginnings(self) -> Beginnings:
        """Where a long text may end; read when a first long text comes (a 9.5 MB tokenizer.json
        is serialized again for its pre-tokenizer), never for a text cut at its start."""
        right = self.side == "right"
        return Beginnings(
            self.tokenizer, self.max_length, cut_chars(self.tokenizer) if right else ""
        )

    def feeds(self, texts: Sequence[str], ids_input: str) -> dict[str, np.ndarray]:
        """The model's inputs for `texts`: ids, and the mask and type ids the model reads."""
        encodings = self.encodings(texts, ids_input)
        dtypes = self.inputs.dtypes or {}

        def table(name: str, rows: list[list[int]]) -> np.ndarray:
            return np.asarray(rows, dtype=dtypes.get(name, "int64"))

        out = {ids_input: table(ids_input, [e.ids for e in encodings])}
        if self.inputs.mask:
            out[self.inputs.mask] = table(self.inputs.mask, [e.attention_mask for e in encodings])
        if self.inputs.type_ids:
            out[self.inputs.type_ids] = table(self.inputs.type_ids, [e.type_ids for e in encodings])
        return out
