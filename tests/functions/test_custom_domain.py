"""Through an API Gateway custom domain whose API mapping has a path (`api.example.com/ml` ->
the API's `$default` stage), API Gateway keeps the mapping's path in `rawPath` and
`requestContext.http.path` (`/ml/models/digits-mlp/predict`) while the route that matched is
`POST /models/digits-mlp/predict`. The predict, health and control functions routed on the path
as sent: every request through such a domain was a 404 (`no route for POST /ml/...`); the
control plane also 404'd on a named stage, which the predict function already took off.
Driven with the golden events (events/predict_custom_domain.json, events/control/), by each
function's handler as Lambda builds it, over S3 on moto's server."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench.models import mlp_onnx
from functions.runtime.registry import Registry
from functions.runtime.s3client import make_s3_client
from functions.runtime.s3store import S3Store
from infra.local.functions import load_handler
from tests import onnx_factory

EVENTS = Path(__file__).resolve().parents[2] / "events"
DOMAIN = "api.example.com"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())  # type: ignore[no-any-return]


def through(original: dict[str, Any], mapping: str, *, stage: str | None = None) -> dict[str, Any]:
    """`original` as API Gateway sends it through the custom domain's mapping `mapping` (or,
    with `stage`, on the API's own domain at that named stage)."""
    sent = copy.deepcopy(original)
    context = sent["requestContext"]
    prefix = f"/{stage or mapping}"
    sent["rawPath"] = prefix + sent["rawPath"]
    context["http"]["path"] = prefix + context["http"]["path"]
    if stage is None:
        sent["headers"]["host"] = context["domainName"] = DOMAIN
        context["domainPrefix"] = DOMAIN.partition(".")[0]
    else:
        context["stage"] = stage
    return sent


@pytest.fixture(scope="module")
def registry_uri(tmp_path_factory: pytest.TempPathFactory, moto_server: Any) -> str:
    """digits-mlp:1 @production in a fresh bucket on moto's server."""
    bucket = f"aiaas-custom-domain-{uuid.uuid4().hex[:8]}"
    make_s3_client().create_bucket(Bucket=bucket)
    root = tmp_path_factory.mktemp("custom-domain")
    onnx = mlp_onnx(root / "mlp.onnx")
    registry = Registry(S3Store(bucket, "registry"))
    registry.publish(
        onnx_factory.manifest_for(onnx, "digits-mlp", "1", labels=tuple("0123456789")), onnx, {}
    )
    registry.set_alias("digits-mlp", "production", "1", actor="ci")
    return f"s3://{bucket}/registry"


@pytest.fixture(scope="module")
def predict(registry_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    env = {
        "AIAAS_MODEL": "digits-mlp",
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": registry_uri,
        "AIAAS_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
    }
    return load_handler("functions.predict.handler.handler", env)


def test_the_golden_custom_domain_event_is_predict_simple_through_a_mapping() -> None:
    assert event("predict_custom_domain") == through(event("predict_simple"), "ml")


def test_predict_and_health_answer_through_a_custom_domain_s_mapping(
    predict: Callable[..., Any], registry_uri: str
) -> None:
    plain = predict(event("predict_simple"), None)
    assert plain["statusCode"] == 200, plain["body"]
    for mapping in ("ml", "ml/v1"):
        sent = through(event("predict_simple"), mapping)
        answer = predict(sent, None)
        assert answer["statusCode"] == 200, answer["body"]
        assert orjson.loads(answer["body"]) == orjson.loads(plain["body"])
    answer = predict(event("predict_custom_domain"), None)
    assert (answer["statusCode"], answer["body"]) == (200, plain["body"])
    pinned = predict(through(event("predict_version_simple"), "ml"), None)
    assert pinned["statusCode"] == 200, pinned["body"]
    assert orjson.loads(pinned["body"])["version"] == "1"
    health = load_handler("functions.health.handler.handler", {"AIAAS_STORE": registry_uri})
    for name in ("health_live", "health_ready", "server_metadata"):
        answer = health(through(event(name), "ml"), None)
        assert answer["statusCode"] == 200, (name, answer["body"])


def test_a_path_the_route_does_not_end_is_still_routed_as_sent(
    predict: Callable[..., Any],
) -> None:
    """Only a route's own segments after the mapping are taken: a path that does not end in the
    route API Gateway named (a hand-made event) is a 404 naming the path as sent."""
    sent = through(event("predict_simple"), "ml")
    sent["rawPath"] = sent["requestContext"]["http"]["path"] = "/ml/models/digits-mlp/infer"
    answer = predict(sent, None)
    assert answer["statusCode"] == 404
    assert "/ml/models/digits-mlp/infer" in orjson.loads(answer["body"])["error"]


def test_the_control_plane_answers_through_a_mapping_and_on_a_named_stage(
    registry_uri: str,
) -> None:
    control = load_handler("functions.control.handler.handler", {"AIAAS_STORE": registry_uri})
    plain = control(event("control/models_list"), None)
    assert plain["statusCode"] == 200, plain["body"]
    for sent in (
        through(event("control/models_list"), "ml"),
        through(event("control/models_list"), "ml/v1"),
        through(event("control/models_list"), "", stage="prod"),
    ):
        answer = control(sent, None)
        assert (answer["statusCode"], answer["body"]) == (200, plain["body"]), sent["rawPath"]
    alias = control(through(event("control/alias_get"), "control"), None)  # a mapping 'control'
    assert alias["statusCode"] == 200, alias["body"]
    assert orjson.loads(alias["body"])["version"] == "1"
