"""A split alias through the real predict handler, on API Gateway HTTP API v2.0 events: the
share each version answers, stickiness by routing key and by caller identity, and the version
named in every response (body and `x-aiaas-version`)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from functions.predict.service import PredictService, service_from_env
from functions.runtime.cache import ArtifactCache
from functions.runtime.explain.background import BACKGROUND_FILE, summarize
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry, version_prefix
from functions.runtime.store import LocalStore
from tests.functions.test_predict_events import body_of, http_event
from tests.publishing import flip_stored_model_byte, publish_linear

MODEL = "m"
ROW = json.dumps({"inputs": [[1.0, 2.0, 3.0, 4.0]]})
INFER = json.dumps(
    {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}
)
PREDICT = f"/models/{MODEL}/predict"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish_linear(registry, tmp_path, MODEL, version, seed=int(version))
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, "production", "2", weight=0.1)
    return registry


@pytest.fixture
def service(registry: Registry, tmp_path: Path) -> PredictService:
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "cache"))
    return service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "3600"}, pool)


def answered(response: dict[str, Any]) -> str:
    """The version that answered, checked to agree between the header and the body."""
    assert response["statusCode"] == 200, response["body"]
    version = response["headers"]["x-aiaas-version"]
    body = body_of(response)
    assert body.get("version", body.get("model_version")) == version
    return str(version)


def with_identity(authorizer: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    event = http_event("POST", PREDICT, ROW, headers=headers)
    event["requestContext"]["authorizer"] = authorizer
    return event


def test_10000_anonymous_requests_split_90_10(service: PredictService) -> None:
    counts = Counter(
        answered(service.handle(http_event("POST", PREDICT, ROW))) for _ in range(10_000)
    )
    assert set(counts) == {"1", "2"}
    assert abs(counts["2"] / 10_000 - 0.10) <= 0.02, counts


def test_10000_callers_split_90_10_by_their_routing_keys(service: PredictService) -> None:
    counts = Counter(
        answered(
            service.handle(
                http_event("POST", PREDICT, ROW, headers={"x-aiaas-routing-key": f"user-{i}"})
            )
        )
        for i in range(10_000)
    )
    assert abs(counts["2"] / 10_000 - 0.10) <= 0.02, counts


@pytest.mark.parametrize(
    "event",
    [
        http_event("POST", PREDICT, ROW, headers={"x-aiaas-routing-key": "customer-42"}),
        http_event("POST", PREDICT, ROW, headers={"X-Aiaas-Routing-Key": "customer-42"}),
        with_identity({"iam": {"userArn": "arn:aws:iam::123456789012:user/alice"}}),
        with_identity({"jwt": {"claims": {"sub": "5f1c-user"}, "scopes": None}}),
        http_event(
            "POST", f"/v2/models/{MODEL}/infer", INFER, headers={"x-aiaas-routing-key": "k"}
        ),
    ],
    ids=["header", "header-any-case", "iam-user", "jwt-sub", "oip-infer"],
)
def test_1000_requests_of_one_caller_hit_one_version(service: PredictService, event: Any) -> None:
    assert len({answered(service.handle(event)) for _ in range(1000)}) == 1


def test_the_routing_key_wins_over_the_identity(service: PredictService) -> None:
    by_key = {
        answered(
            service.handle(
                with_identity(
                    {"jwt": {"claims": {"sub": f"u{i}"}}}, {"x-aiaas-routing-key": "same"}
                )
            )
        )
        for i in range(300)
    }
    by_identity = {
        answered(service.handle(with_identity({"jwt": {"claims": {"sub": f"u{i}"}}})))
        for i in range(300)
    }
    assert len(by_key) == 1 and by_identity == {"1", "2"}


def test_raising_the_weight_only_moves_callers_onto_the_canary(
    service: PredictService, registry: Registry
) -> None:
    def canary_callers() -> set[int]:
        return {
            i
            for i in range(2000)
            if answered(
                service.handle(
                    http_event("POST", PREDICT, ROW, headers={"x-aiaas-routing-key": str(i)})
                )
            )
            == "2"
        }

    at_10 = canary_callers()
    registry.set_alias(MODEL, "production", "2", weight=0.5)  # seen on the next request (a stat)
    at_50 = canary_callers()
    assert at_10 < at_50 and abs(len(at_50) / 2000 - 0.5) <= 0.04


def test_each_version_answers_with_its_own_model(
    service: PredictService, registry: Registry
) -> None:
    """The canary's answers are the canary's model's, not the main one's under its name."""
    by_version: dict[str, list[float]] = {}
    for i in range(200):
        response = service.handle(
            http_event("POST", PREDICT, ROW, headers={"x-aiaas-routing-key": str(i)})
        )
        by_version[answered(response)] = body_of(response)["outputs"]["logits"][0]
    assert set(by_version) == {"1", "2"}
    assert not np.allclose(by_version["1"], by_version["2"])


def test_pinned_versions_metadata_and_errors_name_their_version(service: PredictService) -> None:
    pinned = service.handle(http_event("POST", f"/models/{MODEL}/versions/3/predict", ROW))
    assert answered(pinned) == "3"
    metadata = service.handle(http_event("GET", f"/v2/models/{MODEL}"))
    assert metadata["headers"]["x-aiaas-version"] == "1"  # the alias's main version
    bad = service.handle(
        http_event(
            "POST", PREDICT, json.dumps({"inputs": [[1.0]]}), headers={"x-aiaas-routing-key": "k"}
        )
    )
    good = service.handle(http_event("POST", PREDICT, ROW, headers={"x-aiaas-routing-key": "k"}))
    # A bad request after routing is charged to (and names) the version it was routed to.
    assert bad["statusCode"] == 422 and bad["headers"]["x-aiaas-version"] == answered(good)
    missing = service.handle(http_event("POST", f"/models/{MODEL}/versions/9/predict", ROW))
    assert missing["statusCode"] == 404 and "x-aiaas-version" not in missing["headers"]


def test_ending_the_split_serves_one_version_from_the_next_request(
    service: PredictService, registry: Registry
) -> None:
    assert {answered(service.handle(http_event("POST", PREDICT, ROW))) for _ in range(200)} == {
        "1",
        "2",
    }
    registry.rollback(MODEL, "production")
    assert {answered(service.handle(http_event("POST", PREDICT, ROW))) for _ in range(200)} == {"1"}


def test_a_fresh_container_serves_the_main_version_when_the_canary_cannot_load(
    registry: Registry, tmp_path: Path
) -> None:
    # A cold start (or a restarted `aiaas serve`) during a broken canary: the main version
    # answers everyone, as a warm container does when the new canary fails, instead of a 503
    # for all callers. A rollout then sees its canary answer nothing and rolls it back.
    flip_stored_model_byte(registry.store, MODEL, "2")
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "fresh-cache"))
    fresh = service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "3600"}, pool)
    served = Counter(answered(fresh.handle(http_event("POST", PREDICT, ROW))) for _ in range(500))
    assert served == {"1": 500}
    assert "m:2" in str(fresh.served.last_error), fresh.served.last_error
    pinned = fresh.handle(http_event("POST", f"/models/{MODEL}/versions/2/predict", ROW))
    assert pinned["statusCode"] == 503  # asked for by name, the broken version says so


def test_an_explanation_comes_from_the_version_that_answers_the_callers_predictions(
    service: PredictService, registry: Registry
) -> None:
    """A caller on the canary is explained by the canary (both routes), not by the main
    version: an explanation of a prediction the caller never got would mislead them."""
    background = summarize(np.random.default_rng(0).normal(2, 1, size=(40, 4))).to_json()
    for version in ("1", "2"):
        registry.store.put_bytes(
            f"{version_prefix(MODEL, version)}/{BACKGROUND_FILE}", background.encode()
        )
    seen = set()
    for i in range(40):
        headers = {"x-aiaas-routing-key": f"caller-{i}"}
        version = answered(service.handle(http_event("POST", PREDICT, ROW, headers=headers)))
        simple = service.handle(
            http_event("POST", f"/models/{MODEL}/explain", ROW, headers=headers)
        )
        v2 = service.handle(
            http_event("POST", f"/v2/models/{MODEL}/explain", INFER, headers=headers)
        )
        assert answered(simple) == answered(v2) == version
        seen.add(version)
    assert seen == {"1", "2"}


def test_a_fresh_container_serves_the_main_version_when_the_canary_was_deleted(
    registry: Registry, tmp_path: Path
) -> None:
    # Someone removed the canary's files from the store while the alias still splits: the
    # main version is fine, so it answers everyone (it was a 503 for every caller) and the
    # function says why the canary is not served.
    shutil.rmtree(tmp_path / "store" / "models" / MODEL / "versions" / "2")
    pool = ModelPool(registry, ArtifactCache(registry.store, tmp_path / "fresh-cache"))
    fresh = service_from_env({"AIAAS_MODEL": MODEL, "AIAAS_ALIAS_TTL": "3600"}, pool)
    served = Counter(answered(fresh.handle(http_event("POST", PREDICT, ROW))) for _ in range(300))
    assert served == {"1": 300}
    assert "points at version '2', which is not in the registry" in str(fresh.served.last_error)
