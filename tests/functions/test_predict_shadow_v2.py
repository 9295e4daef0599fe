"""Shadow traffic on the Open Inference Protocol route (`/v2/models/{name}/infer`), through the
real predict handler: JSON bodies and binary tensors built by tritonclient (a real client) are
answered by the alias's version only, replayed to the shadow afterwards, and the agreement
recorded equals an offline comparison of the same inputs run through onnxruntime directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton

from functions.predict import metric_names as m
from functions.predict.service import PredictService
from tests.functions.test_predict_events import body_of, http_event
from tests.functions.test_predict_shadow import (
    offline,
    process_of,
    prometheus,
    registry_with,
    requests,
    serve,
)

INFER = "/v2/models/m/infer"


def json_event(x: np.ndarray, path: str = INFER) -> dict[str, Any]:
    tensor = {"name": "x", "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
    return http_event("POST", path, json.dumps({"inputs": [tensor]}))


def binary_event(x: np.ndarray) -> dict[str, Any]:
    """The bytes tritonclient sends: binary input, binary output, its own JSON header."""
    tensor = triton.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    wanted = [triton.InferRequestedOutput("logits", binary_data=True)]
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor], wanted)
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(json_size),
    }
    return http_event("POST", INFER, body, headers=headers, b64=True)


def send(service: PredictService, events: list[dict[str, Any]]) -> None:
    for event in events:
        response = service.handle(event)
        assert response["statusCode"] == 200, response["body"]
        assert response["headers"]["x-aiaas-version"] == "1"  # the shadow never answers
    assert service.shadow.drain(30)


@pytest.mark.parametrize("form", ["json", "binary"])
def test_infer_agreement_equals_an_offline_comparison(tmp_path: Path, form: str) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, gateway = serve(registry, tmp_path)
    rows = requests()
    send(service, [json_event(x) if form == "json" else binary_event(x) for x in rows])
    served, shadow = offline(registry, tmp_path, rows)
    agreed = int((served.argmax(axis=1) == shadow.argmax(axis=1)).sum())
    assert 0 < agreed < len(served)
    assert m.SHADOW_ERRORS + "_total{" not in gateway.render()[0].decode()
    assert prometheus(gateway, m.SHADOW_ROWS) == len(served)
    assert prometheus(gateway, m.SHADOW_AGREED) == agreed
    assert prometheus(gateway, m.SHADOW_REQUESTS) == len(rows)


def test_infer_regressor_differences_equal_an_offline_comparison(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ())
    service, _, gateway = serve(registry, tmp_path)
    rows = requests()
    send(service, [binary_event(x) for x in rows])
    served, shadow = offline(registry, tmp_path, rows)
    diff = np.abs(served.astype(np.float64) - shadow.astype(np.float64))
    rel = diff / np.maximum(np.abs(served.astype(np.float64)), 1e-12)
    assert prometheus(gateway, m.SHADOW_REQUESTS) == len(rows)
    assert prometheus(gateway, m.SHADOW_MAX_ABS) == pytest.approx(diff.max(), rel=1e-12)
    assert prometheus(gateway, m.SHADOW_MAX_REL) == pytest.approx(rel.max(), rel=1e-12)


def test_the_caller_gets_exactly_what_it_got_without_a_shadow(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, _ = serve(registry, tmp_path)
    x = requests()[0]
    with_shadow = body_of(service.handle(json_event(x)))
    registry.set_shadow("m", "production", None)
    plain, _, _ = serve(registry, tmp_path / "plain")
    assert body_of(plain.handle(json_event(x))) == with_shadow
    assert with_shadow["model_version"] == "1"


def test_no_shadow_no_copy_and_a_pinned_shadow_version_is_not_replayed(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, _ = serve(registry, tmp_path)
    x = requests()[0]
    response = service.handle(json_event(x, "/v2/models/m/versions/2/infer"))
    assert response["statusCode"] == 200 and body_of(response)["model_version"] == "2"
    assert process_of(service) is None  # no copy: no replay process was needed
    registry.set_shadow("m", "production", None)
    quiet, _, _ = serve(registry, tmp_path / "quiet")
    send(quiet, [json_event(x), binary_event(x)])
    assert process_of(quiet) is None


def test_a_bad_infer_request_is_answered_400_and_never_replayed(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, ("a", "b", "c"))
    service, _, _ = serve(registry, tmp_path)
    bad = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2]}]}
    response = service.handle(http_event("POST", INFER, json.dumps(bad)))
    assert response["statusCode"] in (400, 422), response["body"]
    assert "x" in body_of(response)["error"]
    assert process_of(service) is None
