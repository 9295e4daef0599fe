"""Raw text in for text models: strings are tokenized into the model's token-ids input.

A text model's manifest says so in `preprocessing` (`vocab_file`, `max_length`, and from this
version on `text_input` and `text_field`); its model file carries the tokenizer: ours
(`functions.runtime.tokenizer`) or a Hugging Face tokenizer.json (`hf_tokenizer`, whose
models may read an attention mask and token type ids too). Callers send either token ids, as before, or one string per
row: under the ids input's name (`{"inputs": ["..."]}`, an OIP `BYTES` tensor of shape [N] or
[N, 1]) or under the text field (`{"instances": [{"text": "..."}]}`, batch CSV/JSONL columns).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import ModelManifest, TensorSpec

TEXT_FIELD = "text"
# The second text of a pair, as a Hugging Face pipeline takes it: refused, not dropped.
PAIR_FIELD = "text_pair"
TEXT_KINDS = "USO"  # numpy kinds of arrays that may hold strings
# Blank: whitespace, control (Cc) and format (Cf: zero-width space, word joiner, BOM) characters
# only, which tokenizers drop (BERT's normalizer) or which show nothing: such a text is as empty
# as "", and a tokenizer that adds no special tokens would give the model no token at all.
INVISIBLE = ("Cc", "Cf")


def is_blank(text: str) -> bool:
    """Whether `text` holds no visible character (stops at the first one: ~0.2 us a text)."""
    for char in text:
        if not char.isspace() and unicodedata.category(char) not in INVISIBLE:
            return False
    return True


@dataclass(frozen=True)
class TextInput:
    """Where a text model reads raw text: the ids input it feeds and the record field."""

    input: str
    field: str
    max_length: int
    vocab_size: int | None = None  # ids sent as such must be below it (None: not recorded)
    # The widest row its tokenizer pads to, when past max_length (tokenizer.json's
    # pad_to_multiple_of or fixed length): ids its users' own encode gives may be that wide.
    max_width: int | None = None
    # The token type table's rows, where publish found it: type ids sent must be below it.
    type_rows: int | None = None


def text_input(manifest: ModelManifest) -> TextInput | None:
    """The text input of a text model (one whose preprocessing names a vocabulary); else None."""
    pre = manifest.preprocessing
    if "vocab_file" not in pre:
        return None
    name = pre.get("text_input", manifest.inputs[0].name)
    field = pre.get("text_field", TEXT_FIELD)
    length = pre.get("max_length")
    if not (isinstance(name, str) and isinstance(field, str) and isinstance(length, int)):
        return None
    # The embedding's rows where recorded (spare rows past the tokenizer's are valid indices).
    rows = pre.get("embedding_rows", pre.get("vocab_size"))
    width, types = pre.get("max_width"), pre.get("type_rows")
    return TextInput(
        name,
        field,
        length,
        rows if isinstance(rows, int) else None,
        width if isinstance(width, int) and width > length else None,
        types if isinstance(types, int) else None,
    )


def batch_view(manifest: ModelManifest) -> ModelManifest:
    """The manifest as batch files see it: a text model reads one string column, its field."""
    text = text_input(manifest)
    if text is None:
        return manifest
    spec = TensorSpec(text.field, "string", (-1,), description="raw text, one per row")
    return dataclasses.replace(manifest, inputs=(spec,), features=())


class TextTokenizer(Protocol):
    """What turns texts into a text model's feeds: `tokenizer.Vocabulary` or `HfTokenizer`."""

    @property
    def kind(self) -> str: ...

    def feeds(self, texts: Sequence[str], ids_input: str) -> dict[str, np.ndarray]: ...

    def document(self) -> bytes: ...


def carries_tokenizer(manifest: ModelManifest) -> bool:
    """Whether a text model's file carries its tokenizer, so it answers raw text. Versions
    published before tokenizers travelled in the model file (2026-11-30, beaa205) name no
    `text_input` and take token ids only: their vocab.json has no sha256 to trust."""
    return "text_input" in manifest.preprocessing


def ids_only(text: TextInput, ref: str) -> str:
    """Why an older text model refuses raw text, and what to send or run instead."""
    return (
        f"model {ref} takes token ids only: it was published before text models carried "
        f"their tokenizer; send input '{text.input}' as int64 ids from its vocab.json, or "
        "train it again with `aiaas train` (that version answers raw text)"
    )


class TextFeeds:
    """Turns the strings of a request into the token ids (and masks) its model reads; with no
    tokenizer (an older text model), refuses strings saying so and checks ids only."""

    def __init__(self, text: TextInput, vocabulary: TextTokenizer | None, ref: str = "") -> None:
        self.text = text
        self.vocabulary = vocabulary
        self.ref = ref

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        """`inputs` with the text (if any was sent) replaced by token ids."""
        name = self.text.input
        value = inputs.get(name)
        if value is None or value.dtype.kind not in TEXT_KINDS:
            name = self.text.field
            value = inputs.get(name)
            if name in self._model_inputs() and value is not None:
                # A version published with its field named as an input (its ids named
                # `text`, `--text-field attention_mask`) read the ids or mask sent under it
                # as text, a 422 (HF text hunt #3): that name holds text only as strings.
                value = value if value.dtype.kind in TEXT_KINDS else None
            if value is None:
                self.check_ids(inputs.get(self.text.input))
                self.check_mask(inputs)
                return inputs  # token ids, or nothing: validation says what is wrong
        if self.vocabulary is None:
            raise InvalidInput(ids_only(self.text, self.ref))
        fed = {key: item for key, item in inputs.items() if key != name}
        filled = self.vocabulary.feeds(texts(value, name), self.text.input)
        refuse_filled(fed, filled)
        fed.update(filled)
        return fed

    def _model_inputs(self) -> tuple[str | None, ...]:
        """The inputs text fills: the ids, and a Hugging Face tokenizer's mask and type ids."""
        fills = getattr(self.vocabulary, "inputs", None)
        return (self.text.input, getattr(fills, "mask", None), getattr(fills, "type_ids", None))

    def check_ids(self, ids: np.ndarray | None) -> None:
        """Token ids sent as such may not be longer than the model reads (an out-of-range
        position would fail deep in onnxruntime) nor outside the vocabulary: onnxruntime's
        Gather fails on an id past the table and reads a negative one from its end, a wrong
        answer with no error. Each a 422 that says the limit."""
        if ids is None or ids.ndim != 2:
            return
        limit = self.text.max_width or self.text.max_length
        if ids.shape[1] == 0 and ids.shape[0]:  # the model's bias alone answered, a 200
            raise InvalidInput(
                f"input '{self.text.input}' has rows of no tokens; send at least one id a row "
                "(or raw text)"
            )
        if ids.shape[1] > limit:
            raise InvalidInput(
                f"input '{self.text.input}' has {ids.shape[1]} tokens a row; this model reads "
                f"at most {limit}: send raw text (truncated for you) or at most {limit} ids"
            )
        size = self.text.vocab_size
        if size is None or not ids.size or ids.dtype.kind not in "iuf":
            return
        low, high = ids.min(), ids.max()
        if low < 0 or high >= size:
            raise InvalidInput(
                f"input '{self.text.input}' holds token id {low if low < 0 else high}; this "
                f"model's vocabulary has ids 0 to {size - 1}"
            )

    def check_mask(self, inputs: Mapping[str, np.ndarray]) -> None:
        """The attention mask sent with token ids (a Hugging Face tokenizer's model): 0 or 1
        each (a 7 was taken, and moved the answer), and a 1 in every row: a row hiding every
        token left the model nothing to read, a masked mean divided by zero, and the caller's
        slip was a 500 "answered non-finite values". The mask and the type ids have the ids'
        shape: a [N, 1] mask was broadcast over every token inside the graph (a wrong 200),
        another width failed in onnxruntime."""
        fills = getattr(self.vocabulary, "inputs", None)
        name, types = getattr(fills, "mask", None), getattr(fills, "type_ids", None)
        self._check_shapes(inputs, name, types)
        self._check_types(inputs.get(types) if isinstance(types, str) else None, types)
        mask = inputs.get(name) if isinstance(name, str) else None
        if mask is None or mask.ndim != 2 or not mask.size or mask.dtype.kind not in "iufb":
            return
        odd = mask[(mask != 0) & (mask != 1)]
        if odd.size:
            raise InvalidInput(
                f"input '{name}' holds {odd.flat[0]}; an attention mask is 1 for a token the "
                "model reads and 0 for padding"
            )
        empty = np.flatnonzero(~mask.astype(bool).any(axis=1))
        if empty.size:
            raise InvalidInput(
                f"input '{name}' row {empty[0]} is all 0: it hides every token, so the model "
                "has nothing to read; send 1 for each token"
            )

    def _check_shapes(self, inputs: Mapping[str, np.ndarray], *names: str | None) -> None:
        ids = inputs.get(self.text.input)
        if ids is None or ids.ndim != 2:
            return  # validation names the ids' own shape
        for name in names:
            sent = inputs.get(name) if isinstance(name, str) else None
            if sent is not None and sent.shape != ids.shape:
                raise InvalidInput(
                    f"input '{name}' has shape {list(sent.shape)}; input '{self.text.input}' "
                    f"has {list(ids.shape)}: send one value per token, the same shape"
                )

    def _check_types(self, sent: np.ndarray | None, name: str | None) -> None:
        """Token type ids sent are rows of the type table, as ids are of the vocabulary's:
        Gather read -1 from the table's end (the answer of type 1, a 200) and failed in
        onnxruntime past it. The table's rows where publish recorded them, else >= 0."""
        if sent is None or not sent.size or sent.dtype.kind not in "iuf":
            return
        rows = self.text.type_rows
        low, high = sent.min(), sent.max()
        if low < 0 or (rows is not None and high >= rows):
            kept = f"0 to {rows - 1}" if rows is not None else "0 and up"
            raise InvalidInput(
                f"input '{name}' holds type id {low if low < 0 else high}; this model's token "
                f"types are {kept} (0 for a single text)"
            )


PAIRS = ": this model reads one text a row, not pairs of texts"


def refuse_filled(sent: Iterable[str], filled: Iterable[str]) -> None:
    """A 422 when the caller sent, beside its text, an input the tokenizer fills from it (the
    attention mask, token type ids): silently replaced, the caller's values would be lost."""
    for name in sorted(set(sent).intersection(filled)):
        raise InvalidInput(
            f"input '{name}' is filled from the text by the model's tokenizer; send the text "
            "alone, or token ids with it"
        )


def text_and_ids(where: str, text: TextInput, batch: bool = False) -> str:
    """Why a record holding both the text field and the ids input is refused (the simple
    route; a batch row, whose file the text alone is read from, so said without the ids)."""
    ids = "" if batch else ", or token ids alone"
    return (
        f"{where} holds both {text.field!r} and {text.input!r}: send the text alone (the model "
        f"tokenizes it){ids}"
    )


def filled_beside_text(where: str, name: str, batch: bool = False) -> str:
    """Why a record holding, beside its text, an input the tokenizer fills is refused."""
    ids = "" if batch else ", or token ids with it"
    return (
        f"{where} has {name!r}, which the model's tokenizer fills from the text; send the text "
        f"alone{ids}"
    )


def text_under_ids(where: str, text: TextInput) -> str:
    """Why a record's text under the ids input's name is refused where the model reads more
    than ids (its mask, type ids): the record was told those were missing, about a text."""
    return (
        f"{where} holds a text under {text.input!r}, the model's token ids input: send a text "
        f'in the text field {text.field!r} ({{"instances": [{{"{text.field}": "..."}}]}}) or '
        f'under "inputs" as a list of strings ({{"inputs": ["...", ...]}})'
    )


def filled_inputs(manifest: ModelManifest) -> tuple[str, ...]:
    """The inputs a text model's tokenizer fills beside the ids (its mask, type ids)."""
    pre = manifest.preprocessing
    names = (pre.get("mask_input"), pre.get("type_ids_input"))
    return tuple(n for n in names if isinstance(n, str))


def sent_beside_text(names: Iterable[str], text: TextInput, filled: Iterable[str]) -> str | None:
    """The first of `names` (a batch row's fields, a CSV's columns) that a text model's
    tokenizer fills from the text: its ids input (unless the text field is named so, as a
    version published before publish refused it was), its mask or type ids; else None."""
    sent = names if isinstance(names, (Mapping, set, frozenset)) else set(names)
    return next((n for n in (text.input, *filled) if n != text.field and n in sent), None)


def texts(value: np.ndarray, name: str) -> list[str]:
    """One string per row from a [N] or [N, 1] array (a lone string is one row); else a 422."""
    if value.ndim == 0:
        value = value.reshape(1)
    elif value.ndim == 2 and value.shape[1] == 1:
        value = value.reshape(-1)
    if value.ndim != 1:  # two texts a row are a pair; a text beside a number is not
        pairs = value.ndim == 2 and value.shape[1] == 2 and all(_is_str(v) for v in value.flat)
        raise InvalidInput(
            f"input '{name}' takes one text per row, shape [N] or [N, 1]; got {list(value.shape)}"
            + (PAIRS if pairs else "")
        )
    rows: list[str] = value.tolist()
    for index, row in enumerate(rows):
        if isinstance(row, list):  # ragged [N, 1] rows: ["a"] is a text, ["a", "b"] is not
            if len(row) != 1:
                pairs = len(row) == 2 and all(map(_is_str, row))
                raise InvalidInput(
                    f"input '{name}' row {index} holds {len(row)} values; send one text per "
                    "row" + (PAIRS if pairs else "")
                )
            rows[index] = row = row[0]
        if isinstance(row, bytes):
            try:
                rows[index] = row = row.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"input '{name}' row {index} is not UTF-8 text") from None
        if row is None:  # JSON null, as pandas writes a missing text
            raise InvalidInput(f"input '{name}' row {index} is null; send some text")
        if not isinstance(row, str):
            raise InvalidInput(f"input '{name}' row {index} must be text; got {type(row).__name__}")
        if is_blank(row):
            raise InvalidInput(f"input '{name}' row {index} is empty; send some text")
    if not rows:
        raise InvalidInput(f"input '{name}' has an empty batch; send at least one text")
    return rows


def _is_str(value: object) -> bool:
    return isinstance(value, (str, bytes))
