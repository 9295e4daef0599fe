"""A model that reads token ids of any length ([-1, -1] int64 into an embedding, as a GRU or
LSTM over `nn.Embedding` exports) is told about in sequences and token ids, not in the image
sizes and pandas category codes the same refusals say for other models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

TABLE = np.arange(15, dtype=np.float32).reshape(5, 3)


def sequence_model(path: Path) -> Path:
    """ids int64 [N, L] -> the mean of their embeddings [N, 3]."""
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["emb.weight", "ids"], ["embedded"]),
            helper.make_node("ReduceMean", ["embedded"], ["y"], axes=[1], keepdims=0),
        ],
        "sequence",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(TABLE, "emb.weight")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sequence")
    path = sequence_model(root / "gru.onnx")
    assert main(["--store", str(root / "store"), "publish", str(path), "--name", "gru"]) == 0
    return root


def batch(root: Path, name: str, text: str) -> dict[str, object]:
    (root / name).write_text(text)
    main(["--store", str(root / "store"), "batch", "gru", str(root / name)])
    summary = root / "store" / "batch" / "gru" / "output" / f"{name}.summary.json"
    doc: dict[str, object] = json.loads(summary.read_text())
    return doc


def test_a_csv_of_ids_is_told_to_send_one_sequence_length_a_file_or_jsonl(root: Path) -> None:
    assert batch(root, "ids.csv", "ids_0,ids_1\n1,2\n")["error"] == (
        "input 'ids' has shape [-1, -1]: CSV columns give rows of one fixed shape, and "
        "dimension 1 (the sequence length) is dynamic; send an .npy file of [N, L] ids (one "
        "sequence length a file) or JSONL (each line its own sequence of ids)"
    )
    # what it is told to send scores: sequences of three lengths in one JSONL file
    jsonl = batch(root, "ids.jsonl", '{"ids": [1, 2]}\n{"ids": [3, 4, 0]}\n{"ids": [4]}\n')
    assert (jsonl["status"], jsonl["scored_rows"]) == ("succeeded", 3)
    lines = (root / "store" / "batch" / "gru" / "output" / "ids.jsonl").read_text().splitlines()
    assert [json.loads(line)["pred_y"] for line in lines] == [
        TABLE[[1, 2]].mean(axis=0).tolist(),
        TABLE[[3, 4, 0]].mean(axis=0).tolist(),
        TABLE[4].tolist(),
    ]


@pytest.mark.parametrize("bad", [-1, 5])
def test_token_ids_outside_the_vocabulary_are_refused_as_token_ids(root: Path, bad: int) -> None:
    store = LocalStore(root / "store")
    service = service_from_env(
        {"AIAAS_MODEL": "gru"}, ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    )
    doc = json.dumps({"inputs": [[0, 1, 2], [3, bad, 4]]})
    response = service.handle(http_event("POST", "/models/gru/predict", doc))
    assert (response["statusCode"], body_of(response)) == (
        422,
        {
            "error": f"the model refused these inputs: input 'ids' has {bad} at index [1, 1]; "
            "its values pick rows of a table of 5 (an embedding): send token ids 0 to 4 (the "
            "vocabulary the model was trained with: an unknown or padding token is one of its "
            "ids, not -1 nor one past the end)"
        },
    )
