"""What `aiaas publish --tokenizer` says of tokenizer.json's own padding (HF text hunt #4, #5).

A file padding with an id past the word embedding's rows (or a type id past the type table's)
failed the publish's smoke test in onnxruntime's Gather, and the refusal blamed `--max-length`
(which changed nothing, until a length so short no row was padded published it). A file of
`Fixed: 16` padding over a model reading 24 tokens was said to be "fixed 24". Run through the
CLI's `main` on the test transformer (tests/hf_transformer.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, VOCAB, publish, refused

LABELS = ("--labels", ",".join(hf_transformer.LABELS))


def padded(tmp_path: Path, **padding: object) -> Path:
    """The test tokenizer.json, saved after `enable_padding(**padding)`."""
    own = Tokenizer.from_file(str(hf_transformer.tokenizer_json(tmp_path / "plain.json")))
    own.enable_padding(**padding)  # type: ignore[arg-type]
    path = tmp_path / "tokenizer.json"
    own.save(str(path))
    return path


@pytest.mark.parametrize(
    ("padding", "error"),
    [
        ({"pad_id": 100, "pad_token": "[PAD]"}, f"tokenizer.json pads with id 100 "
         f"(padding.pad_id), past the model's word embedding of {VOCAB} rows (ids 0 to "
         f"{VOCAB - 1}): set pad_id to the id of the model's pad token ([PAD] is 0) and save it "
         "again"),
        ({"pad_id": 0, "pad_type_id": 5}, "tokenizer.json pads with type id 5 "
         "(padding.pad_type_id), past the model's 2 token types (0 to 1) read by "
         "'token_type_ids': set pad_type_id to 0 and save it again"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("length", [(), ("--max-length", "10")], ids=["default", "max-length"])
def test_a_pad_id_past_the_models_table_is_named(
    tmp_path: Path, padding: dict[str, object], error: str, length: tuple[str, ...]
) -> None:
    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=POSITIONS)
    tokenizer = padded(tmp_path, **padding)
    assert refused(tmp_path, model, *LABELS, "--tokenizer", str(tokenizer), *length) == error


def test_a_fixed_length_is_quoted_as_the_file_says(tmp_path: Path) -> None:
    """The file's 16, raised to the 24 tokens the model reads, was quoted as "fixed 24"."""
    model = hf_transformer.transformer(tmp_path / "model.onnx", positions=POSITIONS)
    tokenizer = padded(tmp_path, pad_id=0, pad_token="[PAD]", length=16)
    store = LocalStore(tmp_path / "store")
    code, out, err = publish(store, model, *LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    assert (
        "batches are padded to their longest row, not to tokenizer.json's fixed 16 (raised to "
        f"max_length {POSITIONS}): the model answers a text the same either way"
    ) in out
    assert Registry(store).manifest("tiny-bert", "1").preprocessing["pad_to_longest"] is True
