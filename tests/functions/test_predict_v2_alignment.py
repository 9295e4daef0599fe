"""A binary tensor's answer does not depend on where the JSON header ends.

Binary tensors were handed to onnxruntime in place, in the request body, where they start
wherever the JSON header's length puts them; onnxruntime's ReduceSum and ReduceMean answer data
that starts off a 16-byte boundary with other low bits. A request `id` one character longer
changed the answer, and a binary request answered other bits than the same one in JSON and
than onnxruntime on the model file (OIP hunt; tritonclient showed it too)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import http_event

RNG = np.random.default_rng(1)


def reduction(path: Path, op: str) -> Path:
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0)
    graph = helper.make_graph(
        [node],
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("rows", [2, 100], ids=["copied", "looked-at"])  # 1.5 KB, 77 KB
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMean"])
def test_every_header_length_answers_onnxruntimes_bits(tmp_path: Path, op: str, rows: int) -> None:
    X = RNG.normal(size=(rows, 3, 64)).astype(np.float32)  # noqa: N806
    path = reduction(tmp_path / "m.onnx", op)
    store = LocalStore(tmp_path / "store")
    Registry(store).publish(onnx_factory.manifest_for(path, "m", "1"), path)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))
    service: PredictService = service_from_env({"AIAAS_MODEL": "m"}, pool)
    expected = ort.InferenceSession(str(path)).run(None, {"x": X})[0].tobytes()
    for length in range(16):  # every offset of the tensor from a 16-byte boundary
        header = {
            "id": "i" * length,
            "inputs": [{"name": "x", "shape": list(X.shape), "datatype": "FP32",
                        "parameters": {"binary_data_size": X.nbytes}}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }  # fmt: skip
        head = json.dumps(header).encode()
        headers = {
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(head)),
        }
        event = http_event("POST", "/v2/models/m/infer", head + X.tobytes(), headers=headers,
                           b64=True)  # fmt: skip
        answer = service.handle(event)
        assert answer["statusCode"] == 200, answer["body"]
        body = base64.b64decode(answer["body"])
        json_length = int(answer["headers"]["inference-header-content-length"])
        assert body[json_length:] == expected, (len(head) % 16, op)


def test_a_decoded_tensor_starts_on_a_16_byte_boundary() -> None:
    """What the fix relies on: a copy into a bytes object is aligned at every offset."""
    from functions.runtime.codecs.tensors import from_bytes
    from functions.runtime.dtypes import BY_NAME

    body = bytes(64) + np.arange(64, dtype=np.float32).tobytes()
    for offset in range(17):
        raw = memoryview(bytes(offset) + body[64:])[offset:]
        array = from_bytes(raw, BY_NAME["float32"], (1, 64), "x")
        assert array.__array_interface__["data"][0] % 16 == 0, offset
        assert array.tolist() == [list(range(64))]
