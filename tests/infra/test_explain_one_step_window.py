"""/explain of a window of one step to a model of any window length (a GRU over [N, -1, 12])
answered 200 with every attribution 0 and the base value the prediction: such a model is
explained against each window's own mean per feature, which for one step is the window itself.
It is now a 422 saying to send at least 2 steps; two steps are explained. Real ONNX model, the
predict function's real handler."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import body_of, http_event
from tests.infra.test_explain_wide_windows import SENSORS, _linear, _publish, _service


@pytest.mark.parametrize("first", [False, True])
def test_a_one_step_window_is_refused_and_two_steps_are_explained(
    tmp_path: Path, first: bool
) -> None:
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t", first=first), "pump")
    service = _service(store, tmp_path, "pump")
    windows = np.random.default_rng(8).normal(size=(1, 2, SENSORS)).astype(np.float32)
    if first:
        windows = windows.transpose(0, 2, 1)
    one = windows[:, :, :1] if first else windows[:, :1]

    def explain(sent: np.ndarray) -> tuple[int, dict]:
        body = json.dumps({"inputs": sent.tolist()})
        response = service.handle(http_event("POST", "/models/pump/explain", body))
        return response["statusCode"], body_of(response)

    status, doc = explain(one)
    assert status == 422, doc
    row = [SENSORS, 1] if first else [1, SENSORS]
    assert doc["error"].startswith(f"a window of one step ({row}) cannot be explained"), doc
    assert "send at least 2 steps" in doc["error"]
    status, doc = explain(windows)
    assert status == 200, doc
    got = np.asarray(doc["explanations"][0]["attributions"]).reshape(-1)
    assert np.abs(got).max() > 0.01  # sensor 1's two steps moved y


@pytest.mark.parametrize("first", [False, True])
def test_a_window_whose_steps_are_all_the_same_is_refused_as_one_step_is(
    tmp_path: Path, first: bool
) -> None:
    """A window whose every step is the same (a machine idle) is its own mean per feature, so
    it was answered 200 with every attribution 0 and the base value the prediction, as one step
    had been: 'nothing moved the prediction', where the model answers 2 x the sum of sensor 1.
    It is a 422 naming the window, as one step is; a window where one sensor moves is explained."""
    store = LocalStore(tmp_path / "store")
    _publish(store, _linear(tmp_path / "m.onnx", "t", first=first), "pump")
    service = _service(store, tmp_path, "pump")
    step = np.random.default_rng(8).normal(size=SENSORS).astype(np.float32)
    idle = np.repeat(step[None, None, :], 6, axis=1)  # [1, 6, 12], every step `step`
    moving = idle.copy()
    moving[0, 3, 1] += 1.0

    def explain(sent: np.ndarray) -> tuple[int, dict]:
        sent = sent.transpose(0, 2, 1) if first else sent
        body = json.dumps({"inputs": sent.tolist()})
        response = service.handle(http_event("POST", "/models/pump/explain", body))
        return response["statusCode"], body_of(response)

    status, doc = explain(idle)
    assert status == 422, doc
    assert doc["error"].startswith("window 0 cannot be explained: its steps are all the same"), doc
    status, doc = explain(np.concatenate([moving, idle]))  # one idle window among others
    assert status == 422 and doc["error"].startswith("window 1 cannot be explained"), doc
    status, doc = explain(moving)
    assert status == 200, doc
    got = np.asarray(doc["explanations"][0]["attributions"]).reshape(-1)
    assert np.abs(got).max() > 0.01
