"""Token type ids sent with token ids are rows of the model's type table.

A torch export of int32 inputs casts them before its Gathers, so the graph input is no direct
index of the table and the generic embedding-index check (`index_rows`) never saw it: a type id
of -1 was read from the 2-row table's end (type 1's answer, a 200), and 2 failed inside
onnxruntime. Publish now records the type table's rows as the ids' are found, through casts
(`type_rows`), and serving checks the type ids against them. Real path: the test transformer
with int32 type ids cast to int64, published by `aiaas publish --tokenizer`, loaded and
answered by the runtime.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import InvalidInput
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import hf_transformer
from tests.infra.test_publish_tokenizer import POSITIONS, publish


def cast_type_ids(path: Path) -> Path:
    """The test transformer reading int32 token_type_ids through a Cast, as torch exports."""
    model = onnx.load(str(path))
    graph = model.graph
    for node in graph.node:
        node.input[:] = ["type_ids64" if i == "token_type_ids" else i for i in node.input]
    graph.node.insert(0, helper.make_node("Cast", ["token_type_ids"], ["type_ids64"], to=7))
    [spec] = [i for i in graph.input if i.name == "token_type_ids"]
    spec.type.tensor_type.elem_type = TensorProto.INT32
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[LoadedModel, LocalStore]:
    root = tmp_path_factory.mktemp("types")
    model = cast_type_ids(hf_transformer.transformer(root / "m.onnx", positions=POSITIONS))
    tokenizer = hf_transformer.tokenizer_json(root / "tokenizer.json")
    store = LocalStore(root / "store")
    labels = ",".join(hf_transformer.LABELS)
    code, _, err = publish(store, model, "--labels", labels, "--tokenizer", str(tokenizer))
    assert code == 0, err
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return pool.load_version("tiny-bert", "1"), store


def feeds(types: list[int]) -> dict[str, np.ndarray]:
    return {
        "input_ids": np.array([[2, 7, 8, 3]], dtype=np.int64),
        "attention_mask": np.ones((1, 4), dtype=np.int64),
        "token_type_ids": np.array([types], dtype=np.int32),
    }


@pytest.mark.parametrize("bad", [-1, 2], ids=["negative", "past-the-table"])
def test_type_ids_outside_the_type_table_are_a_422(
    loaded: tuple[LoadedModel, LocalStore], bad: int
) -> None:
    model, store = loaded
    with pytest.raises(
        InvalidInput,
        match=rf"^input 'token_type_ids' holds type id {bad}; this model's token types are 0 to 1 "
        r"\(0 for a single text\)$",
    ):
        model.predict(feeds([0, bad, 0, 0]))
    assert model.predict(feeds([0, 1, 1, 0]))["logits"].shape == (1, 3)  # a pair's 2nd text
    manifest = json.loads(store.get_bytes("models/tiny-bert/versions/1/manifest.json"))
    assert manifest["preprocessing"]["type_rows"] == 2
