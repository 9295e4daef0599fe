"""KServe's own Python client (kserve 0.21.0 `InferenceRESTClient`, v2), replayed byte for byte.

kserve is not a dependency: the requests below are what it sent to a real `aiaas serve`
(captured at its httpx transport), and each answer is read the way its
`InferenceRESTClient.infer` / `InferResponse.from_bytes` and `_construct_http_status_error` read
it. What kserve needs beyond tritonclient: a JSON part that carries `id` and `model_name`, a
binary request typed `application/octet-stream`, inputs mixing binary and JSON data, and an
error typed exactly `application/json` (kserve compares with `==`; anything else, a charset
included, loses our message).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import http_event
from tests.infra.test_publish_embedding_ids import embedding_model

INFER = "/v2/models/emb/infer"
# InferInput("feats", [2, 4], "FP32") binary, InferInput("cat", [2], "INT64") JSON,
# InferRequest(request_id="kserve-1", parameters={"binary_data_output": True}).
BINARY_HEAD = (
    b'{"id":"kserve-1","model_name":"emb","inputs":[{"name":"feats","shape":[2,4],'
    b'"datatype":"FP32","parameters":{"binary_data_size":32}},{"name":"cat","shape":[2],'
    b'"datatype":"INT64","data":[4,0]}],"parameters":{"binary_data_output":true}}'
)
FEATS = np.array([[0.5, 1, 1.5, 2], [-1, 0, 1, 2]], np.float32)
BINARY_HEADERS = {
    "inference-header-content-length": "233",
    "content-type": "application/octet-stream",
    "content-length": "265",
}
# The same client with a wrong shape, every input JSON: its answer must surface as our message.
BAD_SHAPE = (
    b'{"id":"kserve-2","model_name":"emb","inputs":[{"name":"feats","shape":[1,3],'
    b'"datatype":"FP32","data":[0.0,0.0,0.0]},{"name":"cat","shape":[2],"datatype":"INT64",'
    b'"data":[4,0]}]}'
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("kserve")
    path = embedding_model(root / "emb.onnx")
    store = LocalStore(root / "store")
    Registry(store).publish(onnx_factory.manifest_for(path, "emb", "1"), path)
    pool = ModelPool(Registry(store), ArtifactCache(store, root / "cache"))
    return service_from_env({"AIAAS_MODEL": "emb"}, pool)


def kserve_reads(response: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The answer as kserve 0.21.0's InferResponse.from_bytes reads it: the JSON part is as long
    as the header says (the whole body without it); binary outputs follow in order."""
    body = base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"]
    raw = body if isinstance(body, bytes) else body.encode()
    length = int(response["headers"].get("inference-header-content-length", len(raw)))
    doc = orjson.loads(raw[:length])
    arrays, start = {}, length
    for output in doc["outputs"]:
        dtype = {"FP32": np.float32}[output["datatype"]]
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[output["name"]] = np.array(output["data"], dtype).reshape(output["shape"])
            continue
        chunk = raw[start : start + size]
        arrays[output["name"]] = np.frombuffer(chunk, dtype).reshape(output["shape"])
        start += size
    return doc, arrays


def test_a_mixed_binary_and_json_request_answers_as_kserve_reads_it(
    service: PredictService,
) -> None:
    body = BINARY_HEAD + FEATS.tobytes()
    assert len(BINARY_HEAD) == 233 and len(body) == 265  # the lengths kserve declared
    event = http_event("POST", INFER, body, headers=BINARY_HEADERS, b64=True)
    response = service.handle(event)
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/octet-stream"
    doc, arrays = kserve_reads(response)
    assert (doc["model_name"], doc["id"], doc["model_version"]) == ("emb", "kserve-1", "1")
    table = np.arange(15, dtype=np.float32).reshape(5, 3)
    np.testing.assert_array_equal(arrays["y"], np.hstack([FEATS, table[[4, 0]]]))


def test_an_error_reaches_kserves_exception_message(service: PredictService) -> None:
    headers = {"content-type": "application/json", "content-length": str(len(BAD_SHAPE))}
    response = service.handle(http_event("POST", INFER, BAD_SHAPE.decode(), headers=headers))
    assert response["statusCode"] == 422
    # kserve: `if response.headers["content-type"] == "application/json": message = json["error"]`
    assert response["headers"]["content-type"] == "application/json"
    assert orjson.loads(response["body"]) == {
        "error": "input 'feats' expects shape [-1, 4]; got [1, 3] (dimension 1 must be 4)"
    }
