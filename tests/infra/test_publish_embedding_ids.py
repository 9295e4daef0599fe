"""A network with an embedding (numeric features + an int64 category id, as `nn.Embedding`
exports: Gather of its weight by the id), published with `aiaas publish` and called through the
predict handler: ids outside the table are refused, a negative one too (onnxruntime's Gather
reads it from the table's end, where torch raises)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
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


def embedding_model(path: Path, batch: int | str = "batch") -> Path:
    """feats [N, 4], cat int64 [N] -> Concat(feats, Gather(emb.weight, cat)) [N, 7]; N fixed
    at `batch` when it is a number (the legacy exporter without dynamic_axes)."""
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["emb.weight", "cat"], ["embedding"]),
            helper.make_node("Concat", ["feats", "embedding"], ["y"], axis=1),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("feats", TensorProto.FLOAT, [batch, 4]),
            helper.make_tensor_value_info("cat", TensorProto.INT64, [batch]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 7])],
        [numpy_helper.from_array(TABLE, "emb.weight")],
    )
    return onnx_factory.save(graph, path)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embedding")
    path = embedding_model(root / "m.onnx")
    assert main(["--store", str(root / "store"), "publish", str(path), "--name", "emb"]) == 0
    return root


def predict(root: Path, cats: list[int], model: str = "emb") -> tuple[int, Any]:
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": model}, pool)
    doc = {"inputs": {"feats": [[0.5] * 4] * len(cats), "cat": cats}}
    response = service.handle(http_event("POST", f"/models/{model}/predict", json.dumps(doc)))
    return response["statusCode"], body_of(response)


def test_ids_in_the_table_answer_as_onnxruntime_does(root: Path) -> None:
    assert Registry(LocalStore(root / "store")).manifest("emb", "1").inputs[1].index_rows == 5
    status, doc = predict(root, [0, 4, 2])
    session = ort.InferenceSession(str(root / "m.onnx"), providers=["CPUExecutionProvider"])
    feeds = {"feats": np.full((3, 4), 0.5, np.float32), "cat": np.array([0, 4, 2])}
    assert status == 200
    np.testing.assert_array_equal(doc["outputs"]["y"], session.run(None, feeds)[0])


def test_ids_outside_the_table_are_refused_negative_ones_too(root: Path) -> None:
    # -1 answered the last row's embedding (pandas' code for a missing category).
    assert predict(root, [0, -1]) == (
        422,
        {
            "error": "the model refused these inputs: input 'cat' has -1 at index [1]; its "
            "values pick rows of a table of 5 (an embedding): send 0 to 4 (a category code of -1, as pandas gives a missing one, is "
            "no row: map it to a row the model was trained with)"
        },
    )
    status, doc = predict(root, [5])
    assert status == 422 and "input 'cat' has 5 at index [0]; " in doc["error"]


def test_a_batch_file_reports_the_rows_with_such_ids_and_scores_the_others(root: Path) -> None:
    rows = "feats_0,feats_1,feats_2,feats_3,cat\n" + "".join(
        f"1,2,3,4,{cat}\n" for cat in (1, -1, 4, 5)
    )
    (root / "rows.csv").write_text(rows)
    assert main(["--store", str(root / "store"), "batch", "emb", str(root / "rows.csv")]) == 0
    out = root / "store" / "batch" / "emb" / "output"
    scored = (out / "rows.csv").read_text().splitlines()
    assert [line.split(",")[4] for line in scored[1:]] == ["1", "4"]
    errors = [json.loads(line) for line in (out / "rows.csv.errors.jsonl").read_text().splitlines()]
    assert [(e["line"], "input 'cat' has" in e["error"]) for e in errors] == [(3, True), (5, True)]


def test_a_batch_fixed_at_one_with_an_id_a_row_takes_several_rows(root: Path) -> None:
    # The legacy export without dynamic_axes: feats [1, 4], cat [1]. Rows were refused with
    # "dimension 0 must be 1" (and batch files as a model whose batch is not fixed throughout),
    # where a [1, 4] input alone is run a row at a time.
    path = embedding_model(root / "fixed.onnx", batch=1)
    assert main(["--store", str(root / "store"), "publish", str(path), "--name", "fixed"]) == 0
    status, doc = predict(root, [0, 4, 2], model="fixed")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feats = np.full((1, 4), 0.5, np.float32)
    want = [session.run(None, {"feats": feats, "cat": np.array([c])})[0][0] for c in (0, 4, 2)]
    assert status == 200, doc
    np.testing.assert_array_equal(doc["outputs"]["y"], want)


def test_int32_ids_cast_to_int64_before_the_gather_are_checked_too(root: Path) -> None:
    # torch's export of int32 ids: Cast(to int64) -> Gather. The check looked only for the
    # input itself as the indices: -1 answered the last row's embedding, 5 an onnxruntime error.
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["cat"], ["cat64"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["cat64", "flat"], ["ids"]),
            helper.make_node("Gather", ["emb.weight", "ids"], ["y"]),
        ],
        "cast_ids",
        [helper.make_tensor_value_info("cat", TensorProto.INT32, ["batch"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [
            numpy_helper.from_array(TABLE, "emb.weight"),
            numpy_helper.from_array(np.array([-1], np.int64), "flat"),
        ],
    )
    path = onnx_factory.save(graph, root / "cast.onnx")
    assert main(["--store", str(root / "store"), "publish", str(path), "--name", "cast"]) == 0
    store = LocalStore(root / "store")
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    service = service_from_env({"AIAAS_MODEL": "cast"}, pool)

    def call(cats: list[int]) -> tuple[int, Any]:
        doc = json.dumps({"inputs": cats})
        response = service.handle(http_event("POST", "/models/cast/predict", doc))
        return response["statusCode"], body_of(response)

    status, doc = call([0, 4])
    assert status == 200 and doc["outputs"]["y"] == TABLE[[0, 4]].tolist()
    for bad in (-1, 5):
        status, doc = call([1, bad])
        assert status == 422 and f"input 'cat' has {bad} at index [1]; " in doc["error"], doc
