"""A user's own transformer and its Hugging Face tokenizer.json, built offline in the test.

The tokenizer is a BERT-style WordPiece (BertNormalizer, BertPreTokenizer, [CLS] ... [SEP]) from
the `tokenizers` library over a small vocabulary; the model (onnx.helper) reads `input_ids`,
`attention_mask` and `token_type_ids` as exported BERT classifiers do: word + position + type
embeddings, one masked self-attention layer, masked mean pooling and a tanh + linear head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
WORDS = [
    "where",
    "is",
    "my",
    "parcel",
    "order",
    "package",
    "the",
    "app",
    "crashes",
    "when",
    "i",
    "open",
    "settings",
    "please",
    "reset",
    "password",
    "was",
    "charged",
    "twice",
    "on",
    "card",
    "refund",
    "money",
    "never",
    "arrived",
    "tracking",
    "says",
    "in",
    "transit",
    "for",
    "two",
    "weeks",
    "help",
    "login",
    "account",
    "cancel",
    "subscription",
    "deliver",
    "late",
    "broken",
    "screen",
    "it",
    "to",
    "a",
    "an",
    "and",
    "of",
]
PIECES = ["##s", "##ed", "##ing", "##ly"]
LABELS = ("billing", "delivery", "technical")


def vocabulary() -> list[str]:
    return [*SPECIALS, *dict.fromkeys(WORDS), *PIECES]


def tokenizer_json(path: Path, tokens: list[str] | None = None) -> Path:
    """A WordPiece tokenizer.json, as `transformers` saves one for a BERT model."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(tokens or vocabulary())}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece()
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def _const(name: str, value: object, dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _weights(
    rng: np.random.Generator, rows: int, d: int, positions: int, classes: int
) -> list[onnx.TensorProto]:
    def w(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.normal(size=shape) * 0.5).astype(np.float32), name)

    return [
        w("word_embeddings", rows, d),
        w("position_embeddings", positions, d),
        w("token_type_embeddings", 2, d),
        *(w(n, d, d) for n in ("Wq", "Wk", "Wv")),
        w("W1", d, d),
        w("b1", d),
        w("W2", d, classes),
        w("b2", classes),
        _const("zero", 0),
        _const("one", 1),
        _const("axis1", [1]),
        _const("axis2", [2]),
        _const("scale", 1 / np.sqrt(d), np.float32),
        _const("big", 1e4, np.float32),
        _const("onef", 1.0, np.float32),
    ]


NODES = [
    ("Gather", ["word_embeddings", "input_ids"], ["we"]),
    ("Shape", ["input_ids"], ["shape"]),
    ("Gather", ["shape", "one"], ["length"]),
    ("Range", ["zero", "length", "one"], ["positions"]),
    ("Gather", ["position_embeddings", "positions"], ["pe"]),
    ("Gather", ["token_type_embeddings", "token_type_ids"], ["te"]),
    ("Add", ["we", "pe"], ["wpe"]),
    ("Add", ["wpe", "te"], ["h"]),
    ("MatMul", ["h", "Wq"], ["q"]),
    ("MatMul", ["h", "Wk"], ["k"]),
    ("MatMul", ["h", "Wv"], ["v"]),
    ("Transpose", ["k"], ["kt"], {"perm": [0, 2, 1]}),
    ("MatMul", ["q", "kt"], ["qk"]),
    ("Mul", ["qk", "scale"], ["scores"]),
    ("Cast", ["attention_mask"], ["maskf"], {"to": TensorProto.FLOAT}),  # MASK_NODES
    ("Sub", ["maskf", "onef"], ["off"]),
    ("Mul", ["off", "big"], ["bias2"]),
    ("Unsqueeze", ["bias2", "axis1"], ["bias"]),
    ("Add", ["scores", "bias"], ["masked"]),
    ("Softmax", ["masked"], ["attn"], {"axis": -1}),
    ("MatMul", ["attn", "v"], ["ctx"]),
    ("Add", ["h", "ctx"], ["h2"]),
    ("Unsqueeze", ["maskf", "axis2"], ["m3"]),
    ("Mul", ["h2", "m3"], ["kept"]),
    ("ReduceSum", ["kept", "axis1"], ["total"], {"keepdims": 0}),
    ("ReduceSum", ["m3", "axis1"], ["count"], {"keepdims": 0}),
    ("Div", ["total", "count"], ["pooled"]),
    ("MatMul", ["pooled", "W1"], ["z1"]),
    ("Add", ["z1", "b1"], ["z2"]),
    ("Tanh", ["z2"], ["hidden"]),
    ("MatMul", ["hidden", "W2"], ["z3"]),
    ("Add", ["z3", "b2"], ["logits"]),
]


# How the model finds padding: its attention_mask input (as Hugging Face exports), none (every
# position counts, so a padded row's answer changes), or from the ids (pad id 0 is masked).
MASK_NODES: dict[str, list[Any]] = {
    "input": [("Cast", ["attention_mask"], ["maskf"], {"to": TensorProto.FLOAT})],
    "none": [
        ("Shape", ["input_ids"], ["ishape"]),
        ("ConstantOfShape", ["ishape"], ["maskf"], {"value": numpy_helper.from_array(
            np.ones(1, np.float32))}),
    ],
    "from_ids": [
        ("Equal", ["input_ids", "zero"], ["ispad"]),
        ("Not", ["ispad"], ["keep"]),
        ("Cast", ["keep"], ["maskf"], {"to": TensorProto.FLOAT}),
    ],
}  # fmt: skip
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _nodes(mask: str, names: dict[str, str]) -> list[onnx.NodeProto]:
    listed: list[Any] = [n for n in NODES if n[2] != ["maskf"]]  # (op, ins, outs[, attrs])
    at = next(i for i, n in enumerate(listed) if n[0] == "Sub")
    listed[at:at] = MASK_NODES[mask]
    return [
        helper.make_node(op, [names.get(i, i) for i in ins], outs, **(attrs[0] if attrs else {}))
        for op, ins, outs, *attrs in listed
    ]


def transformer(
    path: Path,
    *,
    rows: int | None = None,
    d: int = 32,
    positions: int = 24,
    classes: int = len(LABELS),
    seed: int = 3,  # its labels for the tests' texts differ (all three classes appear)
    names: dict[str, str] | None = None,
    mask: str = "input",
) -> Path:
    """The classifier: int64 input_ids / attention_mask / token_type_ids [N, L] -> logits [N, C].
    `rows`: the word embedding's rows (default: the tokenizer's vocabulary size); `names`:
    other names for those inputs (e.g. Google BERT's input_mask, segment_ids); `mask`: a key of
    MASK_NODES (other than "input", the model has no attention mask input)."""
    rng = np.random.default_rng(seed)
    names = names or {}
    read = [n for n in INPUTS if mask == "input" or n != "attention_mask"]
    ids = [
        helper.make_tensor_value_info(names.get(n, n), TensorProto.INT64, ["N", "L"]) for n in read
    ]
    graph = helper.make_graph(
        _nodes(mask, names),
        "tiny-bert",
        ids,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        initializer=_weights(rng, rows or len(vocabulary()), d, positions, classes),
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch"
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
