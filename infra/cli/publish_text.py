"""`aiaas publish --tokenizer tokenizer.json`: a user's own transformer ONNX answers raw text.

Checked before anything is written: the tokenizer loads; the model's inputs are ones text can
fill (token ids, and an attention mask and token type ids if it reads them); the tokenizer's
vocabulary fits the word embedding read from the graph (`transformer_graph`); and the model,
fed by the very tokenizer serving runs, answers a batch holding a text longer than the maximum
length. Then the tokenizer is embedded in a copy of the model file (`embed_document`) and the
file itself goes beside it as `tokenizer.json`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import onnxruntime as ort

from functions.runtime import hf_tokenizer
from functions.runtime.errors import BadRequest
from functions.runtime.file_hashes import sha256_file
from functions.runtime.hf_tokenizer import HfInputs, HfTokenizer, HfTokenizerError
from functions.runtime.introspect import checking_options
from functions.runtime.manifest import ModelManifest, TensorSpec
from functions.runtime.text_input import TEXT_FIELD
from infra.cli.model_files import place_data_files
from infra.cli.text_smoke import MASK_NAMES, describe_padding, masks_fixed_padding, smoke_test
from infra.cli.transformer_graph import Embeddings, load_graph, read_embeddings

TOKENIZER_FILE = "tokenizer.json"
IDS_NAMES = ("input_ids", "ids", "tokens")
# The names exporters give the type ids (the mask's: text_smoke.MASK_NAMES): Hugging Face's
# first, then Google's BERT (tf2onnx, the ONNX model zoo's BERT-SQuAD) and common variants.
TYPE_IDS_NAMES = ("token_type_ids", "segment_ids", "type_ids")
# Embedding tables are often padded past the vocabulary to a multiple of 64 or 128 rows, for
# speed (GPT-2 style exports, OPT, Phi): that many spare rows are not a mismatch; more are.
SPARE_ROWS = 128
# What the attention mask is filled as (cast from the tokenizer's 0/1 by `input_dtypes`).
MASK_DTYPES = ("int64", "int32", "float32", "float16", "float64", "bool")
# Special tokens a model reads around every text, as BERT's and RoBERTa's post-processors add them.
SPECIAL_PAIRS = (("[CLS]", "[SEP]"), ("<s>", "</s>"))


@dataclass(frozen=True)
class TextSetup:
    manifest: ModelManifest
    model: Path  # the copy with the tokenizer embedded
    extra_files: dict[str, Path]
    notes: tuple[str, ...]


def text_inputs(inputs: tuple[TensorSpec, ...]) -> HfInputs:
    """Which inputs text fills; a BadRequest naming any other input the model reads."""
    ints = [s for s in inputs if s.dtype in ("int64", "int32") and s.rank == 2]
    named = {s.name: s for s in ints}
    # A mask of 0/1 as float or bool (torch's `attention_mask.bool()`) is filled as such too.
    masks = {s.name for s in inputs if s.dtype in MASK_DTYPES and s.rank == 2}
    mask = next((n for n in MASK_NAMES if n in masks), None)
    types = next((n for n in TYPE_IDS_NAMES if n in named), None)
    rest = [s for s in ints if s.name not in (mask, types)]
    ids = next((named[n] for n in IDS_NAMES if n in named), rest[0] if len(rest) == 1 else None)
    if ids is None:
        raise BadRequest(_no_ids_input(inputs, rest))
    other = [s.name for s in inputs if s.name not in (ids.name, mask, types)]
    named_odd = [s for s in inputs if s.name in other and s.name in (*MASK_NAMES, *TYPE_IDS_NAMES)]
    if named_odd:  # "cannot fill 'attention_mask'" beside "fills an attention mask" said nothing
        odd = named_odd[0]
        raise BadRequest(
            f"input '{odd.name}' is {odd.dtype} {list(odd.shape)}; text fills an attention mask "
            f"as {' / '.join(MASK_DTYPES)} [N, L] and token type ids as int64 / int32 [N, L]"
        )
    if other:
        raise BadRequest(
            f"the model also reads {other}, which a tokenizer cannot fill: text fills only "
            f"'{ids.name}', an attention mask {_names(MASK_NAMES)} and token type ids "
            f"{_names(TYPE_IDS_NAMES)}"
        )
    dtypes = {s.name: s.dtype for s in inputs}
    return HfInputs(ids.name, mask, types, dtypes)


def check_text_field(field: str, inputs: HfInputs) -> None:
    """A BadRequest when the record field raw text comes in under is blank or one of the
    model's inputs: token ids sent under that name were read as text, a 422 about text shapes,
    and records of text under it held "both 'text' and 'text'" (HF text hunt #3)."""
    if not field.strip():
        raise BadRequest(
            f"--text-field {field!r} names no field: give the record field and batch column raw "
            f"text comes in under (default: {TEXT_FIELD!r})"
        )
    roles = {
        inputs.ids: "token ids",
        inputs.mask: "attention mask",
        inputs.type_ids: "token type ids",
    }
    role = roles.get(field)
    if role is None:
        return
    if field == TEXT_FIELD:  # the default, met by an export's own input name
        raise BadRequest(
            f"the model's {role} input is named {field!r}, the record field raw text comes in "
            "under by default: give --text-field with another name (e.g. --text-field content), "
            f"so that the {role} sent as {field!r} stay {role}"
        )
    raise BadRequest(
        f"--text-field {field!r} is the model's {role} input: the {role} sent under it would be "
        f"read as text; give --text-field another name (default: {TEXT_FIELD!r})"
    )


def _names(names: tuple[str, ...]) -> str:
    return "(" + " / ".join(f"'{n}'" for n in names) + ")"


def _no_ids_input(inputs: tuple[TensorSpec, ...], candidates: list[TensorSpec]) -> str:
    if len(candidates) > 1:  # e.g. a two-tower model: one text per row fills one of them
        return (
            f"the model reads {len(candidates)} inputs of token ids "
            f"{[s.name for s in candidates]}; raw text fills one {_names(IDS_NAMES)}, with its "
            f"attention mask "
            f"{_names(MASK_NAMES)} and token type ids {_names(TYPE_IDS_NAMES)}: export them "
            "under those names (a model of two texts takes token ids: publish it without "
            "--tokenizer)"
        )
    return (
        f"no input of the model takes token ids (int64 [N, L], e.g. 'input_ids'): it has "
        f"{[f'{s.name} {s.dtype} {list(s.shape)}' for s in inputs]}"
    )


def check_vocabulary(size: int, found: Embeddings, largest: int | None = None) -> str:
    """A note on the vocabulary check; a BadRequest naming both numbers when they differ.
    `largest`: the tokenizer's largest id, which a table of `size` rows need not hold (ids
    with gaps): 190 tokens up to id 250 passed a 200-row table, and every text with id 250
    was a 422 telling a client who sent text to fix its token ids (HF text hunt)."""
    rows = found.vocabulary_rows
    if rows is None:
        return "no word embedding found in the graph: the vocabulary size was not checked"
    if not size <= rows < size + SPARE_ROWS:
        raise BadRequest(
            f"the tokenizer has {size} tokens but the model's word embedding has {rows} rows: "
            "this tokenizer.json is not the one the model was trained with"
        )
    if largest is not None and largest >= rows:
        raise BadRequest(
            f"the tokenizer's ids go up to {largest} but the model's word embedding has {rows} "
            f"rows (ids 0 to {rows - 1}): this tokenizer.json is not the one the model was "
            "trained with"
        )
    spare = f" ({rows - size} spare rows)" if rows > size else ""
    return f"vocabulary of {size} tokens fits the word embedding of {rows} rows{spare}"


def check_padding_ids(tokenizer: Any, found: Embeddings, type_ids: str | None) -> None:
    """A BadRequest when tokenizer.json pads with an id (or type id) past the model's table:
    the first padded batch failed in onnxruntime's Gather, and publish blamed --max-length,
    which changed nothing (HF text hunt #4)."""
    padding = tokenizer.padding or {}
    rows, pad = found.vocabulary_rows, padding.get("pad_id")
    if isinstance(pad, int) and rows is not None and pad >= rows:
        token = next(
            (t for t in hf_tokenizer.PAD_TOKENS if tokenizer.token_to_id(t) is not None), None
        )
        own = f" ({token} is {tokenizer.token_to_id(token)})" if token else ""
        raise BadRequest(
            f"tokenizer.json pads with id {pad} (padding.pad_id), past the model's word "
            f"embedding of {rows} rows (ids 0 to {rows - 1}): set pad_id to the id of the "
            f"model's pad token{own} and save it again"
        )
    types, pad_type = found.type_rows, padding.get("pad_type_id")
    if type_ids and isinstance(pad_type, int) and types is not None and pad_type >= types:
        raise BadRequest(
            f"tokenizer.json pads with type id {pad_type} (padding.pad_type_id), past the "
            f"model's {types} token types (0 to {types - 1}) read by '{type_ids}': set "
            "pad_type_id to 0 and save it again"
        )


def check_special_tokens(tokenizer: Any) -> None:
    """A BadRequest when the vocabulary holds a model's special tokens but tokenizer.json has no
    post-processor to add them (a training script that never set one): the model would read
    every text without the [CLS] / <s> it was trained on, a wrong answer with no error. An
    explicit post-processor, even `TemplateProcessing(single="$A")`, is the user's word."""
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    pair = next((p for p in SPECIAL_PAIRS if all(t in vocab for t in p)), None)
    if pair is None or tokenizer.post_processor is not None:
        return
    first, last = pair
    raise BadRequest(
        f"the tokenizer's vocabulary holds {first} and {last} but tokenizer.json has no "
        "post_processor, so texts would reach the model without them: set the one the model "
        f'was trained with (TemplateProcessing(single="{first} $A {last}", ...), as BERT and '
        "RoBERTa tokenizers have) and save again; if it was trained without them, say so with "
        'TemplateProcessing(single="$A")'
    )


def max_length(given: int | None, ids: TensorSpec, found: Embeddings, tokenizer: Any) -> int:
    """--max-length, else what the tokenizer.json truncates to (the ids its user trained on)
    up to what the model reads: the ids input's fixed width, else the position table's rows;
    a BadRequest when none says."""
    if given is not None and given < 2:  # 0 is a value given, not "none given"
        raise BadRequest(
            f"--max-length {given} is too short: a text model reads at least 2 tokens (e.g. "
            "[CLS] and [SEP])"
        )
    added = tokenizer.num_special_tokens_to_add(False)
    if given is not None and given <= added:  # every text would be read as its specials alone
        specials = " and ".join(tokenizer.encode("").tokens)
        raise BadRequest(
            f"--max-length {given} is too short: this tokenizer adds {added} special tokens to "
            f"every text ({specials}), which would leave none of the text read; give at least "
            f"{added + 1}"
        )
    own = (tokenizer.truncation or {}).get("max_length")
    fixed = ids.shape[1] if ids.shape[1] > 0 else None
    reads = fixed or found.position_rows
    length = given or (min(own, reads) if own and reads else own or reads)
    if not length or length < 2:
        raise BadRequest(
            "cannot tell the longest text the model reads (no fixed input width, position table "
            "or truncation in tokenizer.json): give --max-length, e.g. 512 for BERT"
        )
    if fixed and length > fixed:
        raise BadRequest(f"--max-length {length} is over the ids input's width {fixed}")
    return int(length)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def embed_document(source: Path, target: Path, key: str, value: str) -> None:
    """A copy of `source` with the metadata entry `key` appended: ModelProto.metadata_props
    (field 14) is a repeated field, which protobuf merges wherever it appears, so the graph and
    weights are copied byte for byte (no parse, no second copy in memory, any file size). Its
    external data files, if any, are linked beside the copy."""
    entry = _field(1, key.encode()) + _field(2, value.encode())
    shutil.copyfile(source, target)
    with target.open("ab") as handle:
        handle.write(_field(14, entry))
    place_data_files(source, target)


def _already_carried(session: ort.InferenceSession) -> str | None:
    carried: str | None = session.get_modelmeta().custom_metadata_map.get(hf_tokenizer.METADATA_KEY)
    return carried


def text_setup(
    manifest: ModelManifest,
    path: Path,
    tokenizer_file: Path,
    work: Path,
    *,
    graph_of: Path | None = None,
    length: int | None = None,
    field: str = TEXT_FIELD,
) -> TextSetup:
    """The manifest and files of a transformer that reads raw text through `tokenizer_file`;
    `graph_of`: the file whose graph is read, when `path` is its quantized variant."""
    try:
        document = tokenizer_file.read_text(encoding="utf-8")
        tokenizer = hf_tokenizer.load_tokenizer(document)
    except (OSError, UnicodeDecodeError, HfTokenizerError) as exc:
        raise BadRequest(f"--tokenizer {tokenizer_file}: {exc}") from None
    inputs = text_inputs(manifest.inputs)
    check_text_field(field, inputs)
    ids = manifest.input(inputs.ids)
    assert ids is not None
    found = read_embeddings(load_graph(graph_of or path), inputs.ids, inputs.type_ids)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    largest = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=None)
    notes = [check_vocabulary(size, found, largest)]
    check_padding_ids(tokenizer, found, inputs.type_ids)
    check_special_tokens(tokenizer)
    longest = max_length(length, ids, found, tokenizer)
    width = ids.shape[1] if ids.shape[1] > 0 else None
    served = HfTokenizer(document, longest, inputs, width)
    # One session for both checks: a big model's load is the slow part of publishing.
    quiet = checking_options()  # a big model's weights not copied for a few runs
    quiet.log_severity_level = 4  # the smoke test's failures are reported in one line, not logged
    session = ort.InferenceSession(str(path), quiet, providers=["CPUExecutionProvider"])
    fixed = served.padding["length"] if width is None else None  # the file's, not the graph's
    to_longest = False
    if fixed:  # a short text would pay for every position: checked whether it needs to
        shorter = HfTokenizer(document, longest, inputs, width, to_longest=True)
        to_longest = masks_fixed_padding(session, served, shorter, inputs.ids)
        if to_longest:
            served = shorter
            own = (tokenizer.padding or {}).get("length")  # the file's: `fixed` is raised
            raised = f" (raised to max_length {fixed})" if own != fixed else ""
            notes.append(
                f"batches are padded to their longest row, not to tokenizer.json's fixed {own}"
                f"{raised}: the model answers a text the same either way"
            )
    smoke_test(session, served, inputs.ids)
    carried = _already_carried(session)
    del session
    if carried is not None and carried != document:
        raise BadRequest(f"{path} already carries another tokenizer; publish the original file")
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model.onnx"
    embed_document(path, model, hf_tokenizer.METADATA_KEY, document)
    notes.append(f"raw text in: texts longer than {longest} tokens are {_cut(served)}")
    own = (tokenizer.truncation or {}).get("max_length")
    if length is not None and own and own != longest:  # its user's own encode reads another
        notes.append(
            f"warning: tokenizer.json truncates at {own} (its own Tokenizer.encode, as the model "
            f"was trained, mostly); --max-length {longest} serves a text of {min(own, longest) + 1} "
            "tokens or more from other tokens than that encode gives: leave --max-length out to "
            "serve as the file truncates"
        )
    if served.padding["direction"] == "left":
        notes.append("batches are padded on the left, as tokenizer.json says")
    return TextSetup(
        replace(
            manifest,
            inputs=_described(manifest.inputs, inputs.ids, longest),
            file=replace(manifest.file, sha256=sha256_file(model), size=model.stat().st_size),
            preprocessing=_preprocessing(inputs, served, size, field, found, to_longest),
        ),
        model,
        {TOKENIZER_FILE: tokenizer_file},
        tuple(notes),
    )


def _described(specs: tuple[TensorSpec, ...], ids: str, length: int) -> tuple[TensorSpec, ...]:
    text = (
        f"raw text (one string per row), or token ids from {TOKENIZER_FILE}; only the first "
        f"{length} tokens are read"
    )
    return tuple(replace(s, description=text) if s.name == ids else s for s in specs)


def _cut(served: HfTokenizer) -> str:
    if served.side == "left":  # tokenizer.json's own truncation keeps a text's end
        return f"cut to their last {served.max_length} (tokenizer.json truncates on the left)"
    return f"cut to the first {served.max_length}"


def _preprocessing(
    inputs: HfInputs,
    served: HfTokenizer,
    size: int,
    field: str,
    found: Embeddings,
    to_longest: bool,
) -> dict[str, Any]:
    length, kept = served.max_length, "last" if served.side == "left" else "first"
    pre: dict[str, Any] = {
        "tokenizer": hf_tokenizer.KIND,
        "vocab_file": TOKENIZER_FILE,
        "vocab_size": size,
        "max_length": length,
        "pad_id": served.pad_id,
        "text_input": inputs.ids,
        "text_field": field,
        "input_dtypes": dict(inputs.dtypes or {}),
        "truncation": f"longest_first, {served.side} side: the {kept} {length} tokens, special "
        "tokens included",
    }
    # Always recorded: serving pads as tokenizer.json says only for manifests that name the
    # padding publish checked (those before it were served right-padded, and still are).
    pre["padding"] = describe_padding(served)
    if to_longest:  # tokenizer.json's fixed length gives way: see masks_fixed_padding
        pre["pad_to_longest"] = True
    if served.width > length:  # ids its users' own encode pads this wide are accepted
        pre["max_width"] = served.width
    if inputs.mask:
        pre["mask_input"] = inputs.mask
    if inputs.type_ids:
        pre["type_ids_input"] = inputs.type_ids
    if found.vocabulary_rows is not None:
        pre["embedding_rows"] = found.vocabulary_rows
    if inputs.type_ids and found.type_rows is not None:  # type ids sent are checked below it
        pre["type_rows"] = found.type_rows
    return pre
