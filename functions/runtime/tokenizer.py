"""The tokenizer text models ship with, one module for training (torch) and serving (torch-free).

Rule: lowercase the text, take the matches of `TOKEN_PATTERN` in order, map each to its index
in the vocabulary (`UNK_ID` when absent), keep the first `max_length` ids (longer text is
truncated at the end, as the model itself reads only its first `max_length` positions) and
right-pad every row of a batch with `PAD_ID` to a common length.

The vocabulary travels inside the model file: `embed` writes it as the ONNX metadata entry
`aiaas.tokenizer` (the same document as the `vocab.json` published beside it), so the sha256
that vouches for the model vouches for its tokenizer too, and loading needs no second fetch.
Measured against Hugging Face `tokenizers` and onnxruntime-extensions in bench/tokenizers.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np

from functions.runtime.errors import InvalidInput

TOKEN_PATTERN = r"[a-z0-9']+"  # noqa: S105 - a regex, not a secret
KIND = "lowercase-regex-words"
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
METADATA_KEY = "aiaas.tokenizer"
VOCAB_FILE = "vocab.json"  # the vocabulary beside a version's model, for clients
_TOKEN = re.compile(TOKEN_PATTERN)


class TokenizerError(ValueError):
    """A tokenizer document that this module cannot read (or that does not fit its model)."""


def words(text: str) -> list[str]:
    """The tokens of `text` as the model sees them."""
    return _TOKEN.findall(text.lower())


# A long text is read from its first WINDOW_CHARS_PER_TOKEN x max_length characters when they
# hold the tokens the model reads: a 6 MB text took 0.18 s (and a million strings) to read
# whole for the 64 tokens kept.
WINDOW_CHARS_PER_TOKEN = 16


def first_words(text: str, count: int) -> list[str]:
    """`words(text)[:count]`, without reading all of a long text. Exact: lowercasing is done
    character by character (a prefix lowered is the whole lowered's prefix; the one exception,
    a final sigma, is no token character either way), and the window is used only when its
    `count`-th word ends before the window does, so no word is cut at its edge."""
    window = count * WINDOW_CHARS_PER_TOKEN
    if len(text) > window:
        lowered = text[:window].lower()  # may be longer: "İ" lowers to two characters
        found = list(islice(_TOKEN.finditer(lowered), count))
        if len(found) == count and found[-1].end() < len(lowered):
            return [match.group() for match in found]
    return words(text)[:count]


@dataclass(frozen=True)
class Vocabulary:
    """Token strings by id (0 = padding, 1 = unknown) and the longest sequence the model reads."""

    tokens: tuple[str, ...]
    max_length: int

    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {token: i for i, token in enumerate(self.tokens)})

    def ids(self, text: str) -> list[int]:
        """Token ids of `text`, the first `max_length` of them."""
        get = self.index.get
        return [get(word, UNK_ID) for word in first_words(text, self.max_length)]

    def encode(self, texts: Sequence[str], length: int | None = None) -> np.ndarray:
        """int64 [len(texts), length] token ids, right-padded with PAD_ID (length: the longest)."""
        rows = [self.ids(text) for text in texts]
        width = length or max((len(r) for r in rows), default=1) or 1
        out = np.full((len(rows), width), PAD_ID, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : min(len(row), width)] = row[:width]
        return out

    @property
    def kind(self) -> str:
        return KIND

    def keeps(self, text: str) -> bool:
        """Whether `text` holds a word the rule reads (batch files' screen): a text in another
        script (Cyrillic, CJK), emoji or punctuation alone holds none."""
        return _TOKEN.search(text.lower()) is not None

    def refuse_wordless(self, texts: Sequence[str], ids_input: str) -> None:
        """A 422 for a text with no word: encoded, it is an all-padding row, and the model's
        answer to that (the same for every such text) would pass for a label of the text."""
        for index, text in enumerate(texts):
            if not self.keeps(text):
                raise InvalidInput(
                    f"input '{ids_input}' row {index} holds nothing the tokenizer keeps (it "
                    f"reads words of a-z, 0-9 and ', lowercased: {TOKEN_PATTERN}); send some text"
                )

    def feeds(self, texts: Sequence[str], ids_input: str) -> dict[str, np.ndarray]:
        """The model's one input for `texts`: their token ids."""
        self.refuse_wordless(texts, ids_input)
        return {ids_input: self.encode(texts)}

    def document(self) -> bytes:
        """The vocabulary document (vocab.json), for clients that tokenize themselves."""
        return json.dumps(self.to_json()).encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        return {
            "tokenizer": KIND,
            "pattern": TOKEN_PATTERN,
            "pad_id": PAD_ID,
            "unk_id": UNK_ID,
            "max_length": self.max_length,
            "tokens": list(self.tokens),
        }

    def preprocessing(self, text_input: str, text_field: str) -> dict[str, Any]:
        """A manifest's `preprocessing` for a model reading this vocabulary's ids from
        `text_input`, raw text from the record field / batch column `text_field`."""
        info = self.to_json()
        del info["tokens"]
        return {
            **info,
            "vocab_file": VOCAB_FILE,
            "vocab_size": len(self.tokens),
            "text_input": text_input,
            "text_field": text_field,
            "truncation": f"the first {self.max_length} tokens are kept",
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> Vocabulary:
        """A vocabulary from its document; TokenizerError naming what does not fit this rule."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise TokenizerError(f"tokenizer is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise TokenizerError("tokenizer must be a JSON object")
        expected = {"tokenizer": KIND, "pattern": TOKEN_PATTERN, "pad_id": PAD_ID, "unk_id": UNK_ID}
        for key, value in expected.items():
            if doc.get(key) != value:
                raise TokenizerError(
                    f"tokenizer field {key!r} is {doc.get(key)!r}; expected {value!r}"
                )
        tokens, max_length = doc.get("tokens"), doc.get("max_length")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise TokenizerError("tokenizer field 'tokens' must be a list of strings")
        if tokens[:2] != [PAD, UNK] or len(set(tokens)) != len(tokens):
            raise TokenizerError(f"tokenizer tokens must start with {PAD!r}, {UNK!r} and be unique")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            raise TokenizerError("tokenizer field 'max_length' must be a positive integer")
        return cls(tuple(tokens), max_length)


def embed(model_path: str, vocabulary: Vocabulary) -> None:
    """Write `vocabulary` into the ONNX file's metadata (training side: needs the onnx package)."""
    import onnx

    model = onnx.load(model_path, load_external_data=False)
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(vocabulary.to_json()))
    onnx.save(model, model_path)
