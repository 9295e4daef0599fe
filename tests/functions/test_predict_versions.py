"""Versions through the predict handler on real API Gateway v2 events: the per-version simple
route (golden event), and query parameters a route does not take (`?version=`) refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler
from tests import onnx_factory
from tests.functions.test_predict_events import (
    MODEL,
    body_of,
    golden_rows,
    load_event,
    publish_digits,
    reference_logits,
)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """digits-mlp:1 (the MLP, @production) and digits-mlp:2 (a linear model, same signature)."""
    root = tmp_path_factory.mktemp("versions")
    store, mlp = publish_digits(root)
    linear = onnx_factory.linear_classifier(root / "linear.onnx", features=64, classes=10, seed=7)
    digits = tuple(str(i) for i in range(10))
    manifest = onnx_factory.manifest_for(linear, MODEL, "2", labels=digits)
    Registry(LocalStore(store)).publish(manifest, linear)
    return store, {"1": mlp, "2": linear}


@pytest.fixture(scope="module")
def handler(published: tuple[Path, dict[str, Path]]) -> Callable[..., Any]:
    store, _ = published
    env = {
        "AIAAS_MODEL": MODEL,
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(store.parent / "cache"),
    }
    return load_handler("functions.predict.handler.handler", env)


def pinned_event(version: str) -> dict[str, Any]:
    """The golden per-version event, for `version`."""
    event = copy.deepcopy(load_event("predict_version_simple"))
    path = f"/models/{MODEL}/versions/{version}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["pathParameters"] = {"version": version}
    return event


@pytest.mark.parametrize("version", ["1", "2"])
def test_golden_per_version_predict(
    handler: Callable[..., Any], published: tuple[Path, dict[str, Path]], version: str
) -> None:
    event = load_event("predict_version_simple") if version == "1" else pinned_event(version)
    response = handler(event, None)
    assert response["statusCode"] == 200, response["body"]
    doc = body_of(response)
    assert (doc["model"], doc["version"]) == (MODEL, version)
    expected = reference_logits(published[1][version], golden_rows())
    np.testing.assert_allclose(doc["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    assert all(len(p["top_k"]) == 3 for p in doc["predictions"])  # top_k=3 still taken
    unpinned = body_of(handler(load_event("predict_simple"), None))
    assert unpinned["version"] == "1"  # production is untouched by a pinned call


@pytest.mark.parametrize(
    ("version", "status", "error"),
    [
        ("9", 404, f"version '9' of model '{MODEL}' not found"),
        ("..", 400, "invalid version '..'"),
    ],
)
def test_per_version_predict_errors(
    handler: Callable[..., Any], version: str, status: int, error: str
) -> None:
    response = handler(pinned_event(version), None)
    assert response["statusCode"] == status
    assert body_of(response)["error"].startswith(error)


def with_query(name: str, query: dict[str, str]) -> dict[str, Any]:
    event = copy.deepcopy(load_event(name))
    event["queryStringParameters"] = query
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return event


@pytest.mark.parametrize(
    ("name", "query", "error"),
    [
        (
            "predict_simple",
            {"top_k": "3", "version": "2"},
            f"unknown query parameter 'version': POST /models/{MODEL}/predict takes only top_k; "
            f"to use a given version, POST /models/{MODEL}/versions/{{version}}/predict",
        ),
        (
            "predict_version_simple",
            {"version": "2"},
            f"unknown query parameter 'version': POST /models/{MODEL}/versions/1/predict takes "
            "only top_k",
        ),
        (
            "predict_v2_infer_json",
            {"version": "2", "debug": "1"},
            f"unknown query parameters 'version', 'debug': POST /v2/models/{MODEL}/infer takes no "
            f"query parameters; to use a given version, POST /v2/models/{MODEL}/versions/"
            "{version}/infer",
        ),
        (
            "predict_v2_metadata",
            {"version": "2"},
            f"unknown query parameter 'version': GET /v2/models/{MODEL} takes no query "
            f"parameters; to use a given version, GET /v2/models/{MODEL}/versions/{{version}}",
        ),
    ],
)
def test_a_query_parameter_the_route_does_not_take_is_400(
    handler: Callable[..., Any], name: str, query: dict[str, str], error: str
) -> None:
    response = handler(with_query(name, query), None)
    assert (response["statusCode"], body_of(response)) == (400, {"error": error})


def test_a_known_query_parameter_still_works(handler: Callable[..., Any]) -> None:
    response = handler(with_query("predict_simple", {"top_k": "5"}), None)
    assert response["statusCode"] == 200, response["body"]
    assert [len(p["top_k"]) for p in body_of(response)["predictions"]] == [5, 5]
    bad = handler(with_query("predict_simple", {"top_k": "0"}), None)
    assert (bad.get("statusCode"), body_of(bad)["error"]) == (
        400,
        "top_k must be an integer from 1 to 1000; got '0'",
    )


def test_golden_event_body_is_the_simple_one() -> None:
    pinned, simple = load_event("predict_version_simple"), load_event("predict_simple")
    assert json.loads(pinned["body"]) == json.loads(simple["body"])


@pytest.mark.parametrize("selector", ["", "@production"])
def test_a_damaged_selected_version_does_not_take_pinned_ones_down(
    tmp_path: Path, selector: str
) -> None:
    """digits-mlp:2, the latest and @production, fails its integrity check: only unpinned
    requests get the 503; version 1, pinned, is answered by version 1."""
    store, mlp = publish_digits(tmp_path)
    linear = onnx_factory.linear_classifier(tmp_path / "linear.onnx", features=64, classes=10)
    manifest = onnx_factory.manifest_for(linear, MODEL, "2", labels=tuple("0123456789"))
    registry = Registry(LocalStore(store))
    registry.publish(manifest, linear)
    registry.set_alias(MODEL, "production", "2")
    with open(store / "models" / MODEL / "versions" / "2" / "model.onnx", "r+b") as damaged:
        damaged.truncate(100)
    env = {"AIAAS_MODEL": MODEL, "AIAAS_MODEL_SELECTOR": selector}
    env |= {"AIAAS_STORE": str(store), "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    handler = load_handler("functions.predict.handler.handler", env)
    unpinned = handler(load_event("predict_simple"), None)
    assert unpinned["statusCode"] == 503
    assert f"{MODEL}:2 failed its integrity check" in body_of(unpinned)["error"]
    infer = load_event("predict_v2_infer_json")  # the OIP route, pinned to version 1 too
    path = f"/v2/models/{MODEL}/versions/1/infer"
    infer["rawPath"] = infer["requestContext"]["http"]["path"] = path
    infer["routeKey"] = infer["requestContext"]["routeKey"] = f"POST {path}"
    assert handler(infer, None)["statusCode"] == 200
    doc = body_of(handler(pinned_event("1"), None))
    assert doc["version"] == "1"
    expected = reference_logits(mlp, golden_rows())
    np.testing.assert_allclose(doc["outputs"]["logits"], expected, rtol=1e-5, atol=1e-6)
    assert handler(pinned_event("2"), None)["statusCode"] == 503  # its own 503, pinned too
