"""A split alias whose MAIN version fails its integrity check in the store, on a fresh container
(no verified copy anywhere): its canary answers the callers routed to it, with its own model and
its version named; callers routed to the main version get a 503 naming that version and the
integrity failure; no caller moves (one key, one version), and the damaged bytes answer no one.
Before, every request was answered 503, the healthy canary's callers too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import body_of, http_event
from tests.publishing import flip_stored_model_byte, publish_linear

MODEL = "m"
X = [1.0, 2.0, 3.0, 4.0]
ROW = json.dumps({"inputs": [X]})
PREDICT = f"/models/{MODEL}/predict"
KEYS = [f"cust-{i}" for i in range(300)]


def fresh_service(registry: Registry, cache: Path) -> PredictService:
    pool = ModelPool(registry, ArtifactCache(registry.store, cache))
    return service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "3600"}, pool)


def ask(service: PredictService, key: str) -> dict[str, Any]:
    headers = {"x-aiaas-routing-key": key}
    return service.handle(http_event("POST", PREDICT, ROW, headers=headers))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish_linear(registry, tmp_path, MODEL, version, seed=int(version))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "production", "2", weight=0.5)  # 1 stays the main version
    return registry


def test_the_canary_answers_its_callers_while_the_main_version_fails_its_check(
    registry: Registry, tmp_path: Path
) -> None:
    healthy = fresh_service(registry, tmp_path / "cache-before")
    before = {key: ask(healthy, key)["headers"]["x-aiaas-version"] for key in KEYS}
    assert set(before.values()) == {"1", "2"}
    v2 = ort.InferenceSession(registry.store.get_bytes("models/m/versions/2/model.onnx"))
    expected = v2.run(None, {v2.get_inputs()[0].name: [X]})[0].tolist()

    flip_stored_model_byte(registry.store, MODEL, "1")
    fresh = fresh_service(registry, tmp_path / "cache-after")  # no verified copy of 1 anywhere
    for key in KEYS + KEYS:  # twice: a key keeps its version
        response = ask(fresh, key)
        assert response["headers"]["x-aiaas-version"] == before[key], key
        body = body_of(response)
        if before[key] == "2":  # answered by the canary, with its own model
            assert response["statusCode"] == 200, body
            assert body["version"] == "2"
            assert np.allclose(body["outputs"]["logits"], expected), (body, expected)
        else:  # routed to the damaged main version: a 503 saying which and why
            assert response["statusCode"] == 503, body
            assert body == {
                "error": "version 1, which this request is routed to, is not served: "
                f"model {MODEL}:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
            }
    assert "main version 1 not loaded" in str(fresh.served.last_error)
    # What the alias's main version would describe or answer unrouted says it is not served;
    # the canary pinned by name answers, the damaged version pinned by name does not.
    ready = fresh.handle(http_event("GET", f"/v2/models/{MODEL}/ready"))
    assert ready["statusCode"] == 503 and "version 1" in body_of(ready)["error"]
    pinned = fresh.handle(http_event("POST", f"/models/{MODEL}/versions/2/predict", ROW))
    assert pinned["statusCode"] == 200 and body_of(pinned)["version"] == "2"
    damaged = fresh.handle(http_event("POST", f"/models/{MODEL}/versions/1/predict", ROW))
    assert damaged["statusCode"] == 503


def test_without_a_healthy_canary_every_request_is_refused_naming_the_main_failure(
    registry: Registry, tmp_path: Path
) -> None:
    flip_stored_model_byte(registry.store, MODEL, "1")
    flip_stored_model_byte(registry.store, MODEL, "2")
    fresh = fresh_service(registry, tmp_path / "cache")
    for key in KEYS[:40]:
        response = ask(fresh, key)
        assert response["statusCode"] == 503
        assert body_of(response) == {
            "error": f"model {MODEL}:1 failed its integrity check (its model.onnx is not the file its manifest lists) and is not served"
        }
