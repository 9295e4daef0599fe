"""A RoBERTa-style user model, built offline in the test: a byte-level BPE tokenizer.json trained
with the `tokenizers` library (<s> ... </s>, <pad>, <mask>), and a small torch transformer
(nn.TransformerEncoderLayer, key padding mask from `attention_mask`, the <s> position's state
as the pooled output, as RobertaForSequenceClassification reads it) exported with
`torch.onnx.export(dynamo=True)`: input_ids, attention_mask [N, L] -> logits [N, 3].
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import hf_transformer
from tests.torchless import TORCH_MISSING

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
CORPUS = [
    "where is my parcel please",
    "my package never arrived and tracking says in transit",
    "i was charged twice on my card, please refund my money",
    "the app crashes when i open settings",
    "please reset my password, login fails",
    "cancel my subscription and refund the order",
    "the delivery is late and the screen arrived broken",
] * 4


def tokenizer_json(path: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False)
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", tokenizer.token_to_id("</s>")), ("<s>", tokenizer.token_to_id("<s>"))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def transformer(path: Path, vocab: int, pad: int, positions: int = 24, seed: int = 5) -> Path:
    """The classifier exported by torch's dynamo exporter (sequence length dynamic); `pad`:
    the tokenizer's <pad> id."""
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)

    torch.manual_seed(seed)

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.words = torch.nn.Embedding(vocab, 16)
            self.positions = torch.nn.Embedding(positions + pad + 1, 16)
            self.layer = torch.nn.TransformerEncoderLayer(16, 2, 32, 0.0, batch_first=True)
            self.head = torch.nn.Linear(16, len(hf_transformer.LABELS))

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            # Positions numbered from the ids, as transformers' RoBERTa does when given none
            # (create_position_ids_from_input_ids): a pad id shifts every later position.
            real = (input_ids != pad).long()
            where = torch.cumsum(real, dim=1) * real + pad
            hidden = self.words(input_ids) + self.positions(where)
            hidden = self.layer(hidden, src_key_padding_mask=attention_mask == 0)
            return self.head(torch.tanh(hidden[:, 0]))

    example = (torch.ones(2, 7, dtype=torch.int64), torch.ones(2, 7, dtype=torch.int64))
    seq = torch.export.Dim("seq", min=2, max=positions)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        torch.onnx.export(
            Classifier().eval(), example, str(path), dynamo=True, external_data=False,
            input_names=["input_ids", "attention_mask"], output_names=["logits"],
            dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}),
        )  # fmt: skip
    return path
