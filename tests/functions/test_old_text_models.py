"""A text model 629f44c trained (before 2026-11-30, when tokenizers began to travel inside
model.onnx) takes token ids only: raw text is refused saying why and what to run, never with
"expects int64", and its OIP metadata offers no BYTES text input it would refuse.

The manifest is 629f44c's own `aiaas train` of intents-transformer; the model file is a tiny
stand-in with the same signature (tokens int64 [-1, -1] -> logits float32 [-1, 4])."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.drift.fit import fit
from functions.runtime.errors import InvalidInput
from functions.runtime.manifest import ModelManifest
from functions.runtime.model import LoadedModel
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.cli.main import main
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event

GOLDEN = (
    Path(__file__).resolve().parents[1]
    / "fixtures/old_stores/629f44c/models/intents-transformer/versions/1/manifest.json"
)
NAME = "intents-transformer"
IDS_ONLY = (
    "model intents-transformer:1 takes token ids only: it was published before text models "
    "carried their tokenizer; send input 'tokens' as int64 ids from its vocab.json, or train it "
    "again with `aiaas train` (that version answers raw text)"
)


def token_model(path: Path) -> Path:
    """logits = float(sum of the ids) * w: the old model's signature, in 4 nodes."""
    weights = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], [1.0, 0.5, -0.5, -1.0])
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["tokens"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["f", "axes"], ["s"], keepdims=1),
            helper.make_node("MatMul", ["s", "w"], ["logits"]),
        ],
        "tokens",
        [helper.make_tensor_value_info("tokens", TensorProto.INT64, ["n", "l"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 4])],
        [weights, helper.make_tensor("axes", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    path = token_model(tmp_path_factory.mktemp("old-text") / "model.onnx")
    golden = ModelManifest.from_dict(json.loads(GOLDEN.read_text()))
    manifest = dataclasses.replace(golden, file=onnx_factory.manifest_for(path, NAME, "1").file)
    return LoadedModel(manifest, path)


@pytest.fixture(scope="module")
def service(model: LoadedModel) -> PredictService:
    root, manifest, path = model.path.parent, model.manifest, model.path
    store = LocalStore(root / "store")
    Registry(store).publish(manifest, path)
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return service_from_env({"AIAAS_MODEL": NAME}, pool)


def call(service: PredictService, method: str, path: str, doc: Any = None) -> tuple[int, Any]:
    body = None if doc is None else json.dumps(doc)
    answer = service.handle(http_event(method, path, body))
    return answer["statusCode"], body_of(answer)


@pytest.mark.parametrize(
    ("path", "doc"),
    [
        (f"/models/{NAME}/predict", {"inputs": ["part of my shipment is missing"]}),
        (f"/models/{NAME}/predict", {"instances": [{"text": "the app crashes"}]}),
        (f"/models/{NAME}/explain", {"inputs": ["part of my shipment is missing"]}),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "tokens", "shape": [1], "datatype": "BYTES", "data": ["hi"]}]},
        ),
    ],
)
def test_raw_text_is_refused_saying_the_model_takes_ids_and_what_to_run(
    service: PredictService, path: str, doc: Any
) -> None:
    assert call(service, "POST", path, doc) == (422, {"error": IDS_ONLY})


def test_token_ids_are_answered_and_checked_as_before(service: PredictService) -> None:
    status, body = call(service, "POST", f"/models/{NAME}/predict", {"inputs": [[5, 6, 7, 0]]})
    assert status == 200 and body["version"] == "1"
    np.testing.assert_allclose(body["outputs"]["logits"], [[18.0, 9.0, -9.0, -18.0]])
    assert body["predictions"][0]["label"] == "account"
    status, body = call(service, "POST", f"/models/{NAME}/predict", {"inputs": [[5, 999]]})
    assert (status, body) == (
        422,
        {"error": "input 'tokens' holds token id 999; this model's vocabulary has ids 0 to 239"},
    )


def test_metadata_offers_no_text_input_and_the_tokenizer_route_says_why(
    service: PredictService,
) -> None:
    status, body = call(service, "GET", f"/v2/models/{NAME}")
    assert status == 200 and "text" not in body["parameters"]
    assert body["inputs"] == [{"name": "tokens", "datatype": "INT64", "shape": [-1, -1]}]
    assert call(service, "GET", f"/models/{NAME}/tokenizer") == (404, {"error": IDS_ONLY})


def test_a_drift_baseline_takes_its_training_ids_and_refuses_texts_saying_why(
    model: LoadedModel,
) -> None:
    """`aiaas baseline` of such a model: ids bin as length and unknown share, as today's."""
    ids = (np.arange(40 * 8).reshape(40, 8) % 200 + 2).astype(np.int64)
    baseline = fit(model, ids)
    assert (baseline.rows, baseline.features) == (40, ("tokens", "unknown_share"))
    with pytest.raises(InvalidInput) as refused:
        fit(model, np.array(["part of my shipment is missing"]))
    assert refused.value.message == IDS_ONLY


def test_aiaas_baseline_takes_an_npy_of_its_token_ids(
    model: LoadedModel, service: PredictService, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.npy"
    np.save(ids, (np.arange(30 * 6).reshape(30, 6) % 200 + 2).astype(np.int64))
    store = model.path.parent / "store"
    assert main(["--store", str(store), "baseline", f"{NAME}:1", str(ids)]) == 0
    assert (store / f"models/{NAME}/versions/1/drift_baseline.json").is_file()
