"""A window model's input ([N, 28, 1]: one value a step, as a GRU or 1-D conv over a series is
exported) sent as rows without the last axis ([2, 28]) on the simple route. The codec read the
body as one row without its batch axis and the 422 said "got [1, 2, 28]", a shape the caller
never sent (hunt_ts 3); it now names the shape sent and the one to send. One row of the right
shape without its batch axis ([28, 1]) is still one row, and a batch of the right shape is
answered. The real handler on a real API Gateway event."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.predict.service import PredictService
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.functions.test_predict_events import body_of, digits_service, http_event
from tests.onnx_factory import manifest_for

MODEL = "digits-mlp"  # the name digits_service serves
PATH = f"/models/{MODEL}/predict"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> PredictService:
    root = tmp_path_factory.mktemp("window")
    model = onnx_factory.identity(root / "window.onnx", shape=["N", 28, 1])
    Registry(LocalStore(root / "store")).publish(manifest_for(model, MODEL, "1"), model)
    return digits_service(root)


def _predict(service: PredictService, inputs: object) -> tuple[int, dict[str, object]]:
    response = service.handle(http_event("POST", PATH, json.dumps({"inputs": inputs})), None)
    return response["statusCode"], body_of(response)


def test_rows_without_the_last_axis_are_told_the_shape_to_send(service: PredictService) -> None:
    windows = np.arange(56, dtype=np.float32).reshape(2, 28)
    status, body = _predict(service, windows.tolist())
    assert status == 422
    assert body["error"] == (
        "input 'x' expects shape [-1, 28, 1]; got [2, 28]: 2 rows without the last axis of 1, "
        "give each value in a list of its own ([[[v1], [v2], ...], ...], shape [2, 28, 1])"
    )
    status, body = _predict(service, windows[:, :, None].tolist())
    assert status == 200, body
    assert np.array(body["outputs"]["y"]).shape == (2, 28, 1)
    status, body = _predict(service, windows[0, :, None].tolist())  # one row, no batch axis
    assert status == 200, body
    assert np.array(body["outputs"]["y"]).shape == (1, 28, 1)
    status, body = _predict(service, windows[:, :27].tolist())  # neither: as before
    assert status == 422 and "got [1, 2, 27]" in str(body["error"]), body
