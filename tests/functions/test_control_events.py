"""The golden control-plane events (events/control/, as API Gateway sends them to the
ControlPlane function with the AWS_IAM authorizer; usable with `sam local invoke ControlPlane
-e`) through `functions.control.handler.handler` itself, configured by environment as in Lambda,
over S3 on moto's server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from infra.local.functions import load_handler
from tests import onnx_factory

EVENTS = Path(__file__).resolve().parents[2] / "events" / "control"
ALICE = "arn:aws:iam::123456789012:user/alice"
CARD = "# digits-mlp:1\n"


@pytest.fixture
def handler(s3_bucket: str, tmp_path: Path) -> Any:
    """digits-mlp:1 (with a card) and :2, production moved 1 -> 2; the handler as Lambda
    builds it at init from AIAAS_STORE."""
    registry = Registry(S3Store(s3_bucket, "registry"))
    root = tmp_path
    onnx = onnx_factory.linear_classifier(root / "linear.onnx")
    (root / "card.md").write_text(CARD)
    for version, files in (("1", {"card/card.md": root / "card.md"}), ("2", {})):
        manifest = onnx_factory.manifest_for(onnx, "digits-mlp", version)
        registry.publish(manifest, onnx, files)
    registry.set_alias("digits-mlp", "production", "1", actor="ci")
    registry.set_alias("digits-mlp", "production", "2", actor="ci")
    env = {"AIAAS_STORE": f"s3://{s3_bucket}/registry"}
    return load_handler("functions.control.handler.handler", env)


def invoke(handler: Any, name: str) -> tuple[int, dict[str, str], str]:
    answer = handler(json.loads((EVENTS / f"{name}.json").read_text()), None)
    return answer["statusCode"], answer["headers"], answer["body"]


def test_every_control_event_is_driven_here() -> None:
    driven = {"models_list", "alias_get", "alias_promote", "alias_rollback", "version_card"}
    driven |= {"rollout_start", "rollout_abort"}  # test_control_rollout_preconditions.py
    driven |= {"compare"}  # test_control_compare_budget.py
    assert {p.stem for p in EVENTS.glob("*.json")} == driven


def test_list_and_read_an_alias(handler: Any) -> None:
    status, _, body = invoke(handler, "models_list")
    assert (status, orjson.loads(body)["models"][0]["aliases"]) == (200, {"production": "2"})
    status, headers, body = invoke(handler, "alias_get")
    assert (status, orjson.loads(body)["version"]) == (200, "2")
    assert headers["etag"].startswith('"')


def test_promote_creates_once_as_the_iam_caller_then_412s(handler: Any) -> None:
    """The event sends `If-None-Match: *`: the first delivery creates staging (201), a
    repeated one (a client's retry) is refused rather than recorded twice."""
    status, headers, body = invoke(handler, "alias_promote")
    record = orjson.loads(body)
    assert (status, record["version"], record["updated_by"]) == (201, "1", ALICE)
    assert headers["location"] == "staging"  # the request URL itself, said relative to it
    status, _, body = invoke(handler, "alias_promote")
    assert status == 412
    assert orjson.loads(body)["error"].startswith(
        "alias 'staging' of model 'digits-mlp' already exists: it now points at version '1' "
        f"(moved by {ALICE} at "
    )


def test_rollback_and_the_card(handler: Any) -> None:
    status, _, body = invoke(handler, "alias_rollback")
    record = orjson.loads(body)
    assert (status, record["version"], record["updated_by"]) == (200, "1", ALICE)
    assert [h["version"] for h in record["history"]] == ["2", "1"]
    status, headers, body = invoke(handler, "version_card")
    assert (status, headers["content-type"], body) == (200, "text/markdown; charset=utf-8", CARD)
