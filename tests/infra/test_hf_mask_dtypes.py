"""A transformer whose attention mask is float or bool, published with its tokenizer.json.

torch exports `attention_mask.bool()` or a float mask as such; publish refused them with "the
model also reads ['attention_mask'], which a tokenizer cannot fill: text fills only ..., an
attention mask ('attention_mask' / ...)", contradicting itself. The mask is now filled in the
input's dtype, and a mask of a dtype it is not filled as is named with its dtype. The reference
is the `tokenizers` library's own encode and a bare onnxruntime session of the original file;
serving is the runtime's own load of the published version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto
from tokenizers import Tokenizer

from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, TEXTS, publish, refused

LABELS = ",".join(hf_transformer.LABELS)


def mask_of(path: Path, dtype: int) -> Path:
    """The test transformer, its attention_mask input of `dtype` (the graph casts it to float)."""
    model = onnx.load(str(path))
    [spec] = [i for i in model.graph.input if i.name == "attention_mask"]
    spec.type.tensor_type.elem_type = dtype
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize(
    ("dtype", "numpy"), [(TensorProto.FLOAT, np.float32), (TensorProto.BOOL, np.bool_)]
)
def test_a_float_or_bool_mask_is_filled_in_its_dtype(
    tmp_path: Path, dtype: int, numpy: type
) -> None:
    model = mask_of(hf_transformer.transformer(tmp_path / "m.onnx", positions=POSITIONS), dtype)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    store = LocalStore(tmp_path / "store")
    code, _, err = publish(store, model, "--labels", LABELS, "--tokenizer", str(tokenizer))
    assert code == 0, err
    own = Tokenizer.from_file(str(tokenizer))
    own.enable_truncation(POSITIONS)
    own.enable_padding(pad_id=0)
    encodings = own.encode_batch(TEXTS)
    feeds = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=numpy),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    [want] = session.run(["logits"], feeds)
    loaded = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache")).load_version(
        "tiny-bert", "1"
    )
    np.testing.assert_allclose(loaded.predict({"input_ids": np.array(TEXTS)})["logits"], want)
    sent = loaded.predict(feeds)["logits"]  # token ids with the mask in its own dtype
    np.testing.assert_allclose(sent, want)


def test_a_mask_of_another_dtype_is_named_with_its_dtype(tmp_path: Path) -> None:
    model = hf_transformer.transformer(tmp_path / "m.onnx", positions=POSITIONS)
    model = mask_of(model, TensorProto.UINT8)
    tokenizer = hf_transformer.tokenizer_json(tmp_path / "tokenizer.json")
    assert refused(tmp_path, model, "--labels", LABELS, "--tokenizer", str(tokenizer)) == (
        "input 'attention_mask' is uint8 [-1, -1]; text fills an attention mask as int64 / "
        "int32 / float32 / float16 / float64 / bool [N, L] and token type ids as int64 / int32 "
        "[N, L]"
    )
