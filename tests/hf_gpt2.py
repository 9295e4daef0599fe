"""A GPT-2-style user classifier, built offline in the test: a byte-level BPE tokenizer.json
(no [CLS] / <s>: `<|endoftext|>` is its only special token and pads) saved with LEFT padding,
as decoder classifiers are trained and exported, and a model (onnx.helper) that reads
`input_ids` and `attention_mask` [N, L]: word + position embeddings, positions counted from the
mask (cumsum - 1, as transformers numbers a left-padded GPT-2 batch, so leading padding moves
no token), one masked self-attention layer, and the LAST position's state as the pooled output.

With left padding every row's last position is its own last token and the answer does not
depend on the batch; padded on the right, a short text's last position is a pad token and its
answer changes with what else the batch holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests import hf_roberta

EOT = "<|endoftext|>"
LABELS = ("billing", "delivery", "technical")


def tokenizer_json(
    path: Path,
    direction: str | None = "left",
    multiple_of: int | None = 8,
    truncation: dict[str, object] | None = None,
) -> Path:
    """Byte-level BPE with `<|endoftext|>` as pad; padding (and truncation) set as the user's
    training script did, which `Tokenizer.save` writes into tokenizer.json (`direction` None:
    no padding, as GPT-2's own tokenizer.json has)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(hf_roberta.CORPUS, trainer)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    pad = tokenizer.token_to_id(EOT)
    if direction is not None:
        tokenizer.enable_padding(
            direction=direction, pad_id=pad, pad_token=EOT, pad_to_multiple_of=multiple_of
        )
    if truncation is not None:
        tokenizer.enable_truncation(**truncation)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def _w(rng: np.random.Generator, name: str, *shape: int) -> onnx.TensorProto:
    return numpy_helper.from_array((rng.normal(size=shape) * 0.5).astype(np.float32), name)


def _c(name: str, value: object, dtype: type = np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


NODES = [
    ("Gather", ["word_embeddings", "input_ids"], ["we"]),
    ("CumSum", ["attention_mask", "one"], ["counted"]),  # positions from the mask
    ("Sub", ["counted", "one"], ["from0"]),
    ("Max", ["from0", "zero"], ["positions"]),
    ("Gather", ["position_embeddings", "positions"], ["pe"]),
    ("Add", ["we", "pe"], ["h"]),
    ("MatMul", ["h", "Wq"], ["q"]),
    ("MatMul", ["h", "Wk"], ["k"]),
    ("MatMul", ["h", "Wv"], ["v"]),
    ("Transpose", ["k"], ["kt"], {"perm": [0, 2, 1]}),
    ("MatMul", ["q", "kt"], ["qk"]),
    ("Mul", ["qk", "scale"], ["scores"]),
    ("Cast", ["attention_mask"], ["maskf"], {"to": TensorProto.FLOAT}),
    ("Sub", ["maskf", "onef"], ["off"]),
    ("Mul", ["off", "big"], ["bias2"]),
    ("Unsqueeze", ["bias2", "axis1"], ["bias"]),
    ("Add", ["scores", "bias"], ["masked"]),
    ("Softmax", ["masked"], ["attn"], {"axis": -1}),
    ("MatMul", ["attn", "v"], ["ctx"]),
    ("Add", ["h", "ctx"], ["h2"]),
    ("Gather", ["h2", "last"], ["pooled"], {"axis": 1}),  # the LAST position, as GPT-2 pools
    ("Tanh", ["pooled"], ["hidden"]),
    ("MatMul", ["hidden", "W2"], ["z"]),
    ("Add", ["z", "b2"], ["logits"]),
]


def transformer(path: Path, vocab: int, positions: int = 24, d: int = 16, seed: int = 7) -> Path:
    """The classifier: int64 input_ids, attention_mask [N, L] -> logits [N, 3]."""
    rng = np.random.default_rng(seed)
    weights = [
        _w(rng, "word_embeddings", vocab, d),
        _w(rng, "position_embeddings", positions, d),
        *(_w(rng, n, d, d) for n in ("Wq", "Wk", "Wv")),
        _w(rng, "W2", d, len(LABELS)),
        _w(rng, "b2", len(LABELS)),
        _c("zero", 0),
        _c("one", 1),
        _c("last", -1),
        _c("axis1", [1]),
        _c("scale", 1 / np.sqrt(d), np.float32),
        _c("big", 1e4, np.float32),
        _c("onef", 1.0, np.float32),
    ]
    nodes = [
        helper.make_node(op, ins, outs, **(attrs[0] if attrs else {}))
        for op, ins, outs, *attrs in NODES
    ]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["N", "L"])
        for n in ("input_ids", "attention_mask")
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-gpt2",
        inputs,
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(LABELS)])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
