"""A float16 model's answers are written with float16's own fewest digits (docs/batch.md):
orjson wrote them with float32's, 0.1 as 0.099975586 (hunt_quant), in predict's JSON, OIP's JSON
`data` and batch's CSV and JSONL. The real handler on real events, the real batch writer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto

from functions.predict.service import PredictService
from functions.runtime.batch.cells import json_cells, number_rows
from functions.runtime.batch.scoring import OutputField
from functions.runtime.codecs.float_text import written
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, digits_service, http_event
from tests.onnx_factory import manifest_for

MODEL = "digits-mlp"  # the name digits_service serves
VALUES = [0.1, 0.2, 1 / 3, 65504.0, 6e-8, -2.5]
SHORTEST = [str(v) for v in np.array(VALUES, dtype=np.float16)]  # numpy: 0.1, 0.2, 0.3333, ...


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("half")
    model = onnx_factory.identity(root / "half.onnx", elem=TensorProto.FLOAT16, shape=["N", 6])
    Registry(LocalStore(root / "store")).publish(manifest_for(model, MODEL, "1"), model)
    return digits_service(root)


def test_predict_and_oip_json_answer_float16_with_its_own_digits(service: PredictService) -> None:
    body = json.dumps({"inputs": [VALUES]})
    response = service.handle(http_event("POST", f"/models/{MODEL}/predict", body), None)
    assert response["statusCode"] == 200, response["body"]
    assert response["body"].count("0.099975586") == 0
    assert body_of(response)["outputs"]["y"] == [[float(t) for t in SHORTEST]]
    assert '"y":[[0.1,0.2,0.3333,65500.0,6e-8,-2.5]]' in response["body"]  # orjson's notation
    oip = {"inputs": [{"name": "x", "shape": [1, 6], "datatype": "FP16", "data": VALUES}]}
    event = http_event("POST", f"/v2/models/{MODEL}/infer", json.dumps(oip))
    answer = body_of(service.handle(event, None))["outputs"][0]
    assert answer["datatype"] == "FP16"  # the model's type still
    assert answer["data"] == [float(t) for t in SHORTEST]
    assert np.array_equal(np.array(answer["data"], dtype=np.float16), np.float16(VALUES))


def test_batch_cells_write_float16_with_its_own_digits() -> None:
    half = np.array([VALUES, VALUES], dtype=np.float16)
    assert number_rows(half, b",", {}) == [b"0.1,0.2,0.3333,65500.0,6e-8,-2.5"] * 2
    field = OutputField("y", "float16", (6,))
    assert json_cells(field, half) == ["[0.1, 0.2, 0.3333, 65500.0, 6e-8, -2.5]"] * 2
    deep = OutputField("y", "float16", (2, 3))
    assert json.loads(json_cells(deep, half.reshape(2, 2, 3))[0]) == [
        [float(t) for t in SHORTEST[:3]], [float(t) for t in SHORTEST[3:]],
    ]  # fmt: skip
    # Each written value reads back as the same float16; other dtypes pass as they are.
    assert np.array_equal(written(half).astype(np.float16), half)
    single = half.astype(np.float32)
    assert written(single) is single
