"""A model whose graph fixes its batch at 1 (x [1, 3]): OIP metadata lists x as [1, 3], and a
request of the wrong width was refused saying it expects [-1, 3], a shape the metadata never
showed. The refusal now says the metadata's shape and that any number of rows is taken (the
rows run one at a time); a float16 model's type refusal names OIP's FP16, not numpy's float16
alone. Real ONNX models, the predict function's real handler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
from onnx import TensorProto, helper, numpy_helper

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, http_event


def _publish(store: LocalStore, path: Path, name: str, graph: object) -> None:
    onnx_factory.save(graph, path)
    Registry(store).publish(onnx_factory.manifest_for(path, name, "1"), path)


def test_a_batch_fixed_at_one_is_refused_with_the_shape_its_metadata_says(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "store")
    weight = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
    one = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [weight],
    )
    _publish(store, tmp_path / "one.onnx", "one", one)
    half = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "half",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["n", 3])],
    )
    _publish(store, tmp_path / "half.onnx", "half", half)
    pool = ModelPool(Registry(store), ArtifactCache(store, tmp_path / "cache"))

    service = service_from_env({"AIAAS_MODEL": "one"}, pool)
    metadata = body_of(service.handle(http_event("GET", "/v2/models/one")))
    assert metadata["inputs"][0]["shape"] == [1, 3]

    def infer(
        service: PredictService, model: str, shape: list[int], datatype: str
    ) -> tuple[int, str]:
        data = list(range(int(np.prod(shape))))
        tensor = {"name": "x", "shape": shape, "datatype": datatype, "data": data}
        event = http_event("POST", f"/v2/models/{model}/infer", orjson.dumps({"inputs": [tensor]}))
        response = service.handle(event)
        return response["statusCode"], body_of(response).get("error", "")

    status, error = infer(service, "one", [2, 4], "FP32")
    assert status == 422
    assert error == (
        "input 'x' expects shape [1, 3] (any number of rows: the graph's batch of 1 runs a row "
        "at a time); got [2, 4] (dimension 1 must be 3)"
    )
    assert infer(service, "one", [2, 3], "FP32")[0] == 200  # as the refusal says

    status, error = infer(service_from_env({"AIAAS_MODEL": "half"}, pool), "half", [1, 3], "FP32")
    assert (status, error) == (
        422,
        "input 'x' expects FP16 (float16); got FP32 (float32), which does not convert safely: "
        "send FP16 (numpy .astype('float16'))",
    )
