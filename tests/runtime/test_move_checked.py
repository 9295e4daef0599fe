"""An alias moves onto a version only if that version's files are the ones its manifest lists
(size, then sha256 by the verified fetch serving uses), on the directory store and on S3 (moto):
`promote` (with or without a weight), explicit weights (a rollout's steps, the control plane's
PUT), refused with a 409 naming the file and both digests, the alias left where it was. A
rollback checks sizes only (an emergency waits for no download). Before, each move was made
(exit 0) and every fresh server answered 503."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.errors import Conflict
from functions.runtime.registry import Registry, model_key
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import ObjectStore
from infra.local.rollout_metrics import GatewayMetricsSource
from tests import onnx_factory
from tests.publishing import flip_stored_model_byte

MODEL = "checked"
ALIAS = f"/control/models/{MODEL}/aliases/production"


@pytest.fixture
def registry(store: ObjectStore, tmp_path: Path) -> Registry:
    registry = Registry(store)
    for version in ("1", "2", "3"):
        path = onnx_factory.linear_classifier(tmp_path / f"{version}.onnx", seed=int(version))
        registry.publish(onnx_factory.manifest_for(path, MODEL, version), path)
    registry.set_alias(MODEL, "production", "1", actor="ci")
    return registry


def refusal(registry: Registry, version: str) -> str:
    stored = registry.store.get_bytes(model_key(MODEL, version))
    actual = hashlib.sha256(stored).hexdigest()
    listed = registry.manifest(MODEL, version).file.sha256
    return (
        f"{MODEL}@production is not moved to version {version}: {MODEL}:{version}'s model.onnx "
        f"is not the file its manifest lists (sha256 {actual}, the manifest lists {listed}); the object was changed in the "
        "store after it was published"
    )


def test_a_move_onto_a_changed_model_file_is_refused_and_the_alias_stays(
    registry: Registry,
) -> None:
    flip_stored_model_byte(registry.store, MODEL, "2")
    for move in (
        lambda: registry.set_alias(MODEL, "production", "2"),
        lambda: registry.set_alias(MODEL, "production", "2", weight=0.1),
        lambda: registry.set_alias_weights(MODEL, "production", {"1": 0.9, "2": 0.1}),
    ):
        with pytest.raises(Conflict) as refused:
            move()
        assert refused.value.message.startswith(refusal(registry, "2")), refused.value.message
        assert refused.value.public_message == refused.value.message  # the 409 says it all
        record = registry.alias_record(MODEL, "production")
        assert record is not None and (record["version"], record.get("weights")) == ("1", None)
    assert registry.set_alias(MODEL, "production", "3", weight=0.5)["weights"] == {
        "1": 0.5,
        "3": 0.5,
    }


def test_the_control_plane_answers_409_naming_the_file_and_both_digests(
    registry: Registry,
) -> None:
    flip_stored_model_byte(registry.store, MODEL, "2")
    client = TestClient(create_app(registry.store))
    for body in (
        {"version": "2"},
        {"version": "2", "weight": 0.2},
        {"weights": {"1": 0.5, "2": 0.5}},
    ):
        response = client.put(ALIAS, json=body)
        assert response.status_code == 409, response.text
        assert response.json()["error"].startswith(refusal(registry, "2"))
    assert client.get(ALIAS).json()["version"] == "1"
    assert client.put(ALIAS, json={"version": "3"}).status_code == 200


def test_a_listed_file_of_another_size_is_refused_by_its_size(registry: Registry) -> None:
    key = model_key(MODEL, "2")
    registry.store.put_bytes(key, registry.store.get_bytes(key) + b"\0")
    size = registry.manifest(MODEL, "2").file.size
    with pytest.raises(
        Conflict,
        match=rf"'s model.onnx is not the file its manifest lists "
        rf"\({size + 1} bytes, the manifest lists {size}\)",
    ):
        registry.set_alias(MODEL, "production", "2")


def test_a_rollback_checks_sizes_only(registry: Registry) -> None:
    registry.set_alias(MODEL, "production", "2")
    registry.set_alias(MODEL, "production", "3")
    flip_stored_model_byte(registry.store, MODEL, "2")  # same size: not read by a rollback
    assert registry.rollback(MODEL, "production")["version"] == "2"
    registry.set_alias(MODEL, "production", "3")
    key = model_key(MODEL, "2")
    registry.store.put_bytes(key, registry.store.get_bytes(key)[:-1])  # truncated: its HEAD says
    with pytest.raises(Conflict, match=r"'s model\.onnx is not the file its manifest lists"):
        registry.rollback(MODEL, "production", to="2")
    record = registry.alias_record(MODEL, "production")
    assert record is not None and record["version"] == "3"


def test_a_rollout_onto_a_changed_model_file_is_refused_before_it_starts(
    registry: Registry,
) -> None:
    """Refused at the start (a 409: the CLI's exit 3, refused before moving anything), no
    rollout record written; it was refused only at its first step's move, leaving an "aborted"
    rollout behind (exit 1)."""
    flip_stored_model_byte(registry.store, MODEL, "2")
    engine = RolloutEngine(registry, GatewayMetricsSource(lambda: ""))
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=60, max_error_rate=0.01)
    with pytest.raises(Conflict) as refused:
        engine.start(MODEL, "2", plan, alias="production", actor="ci")
    assert refused.value.message.startswith(refusal(registry, "2")), refused.value.message
    assert RolloutBook(registry.store).get(MODEL, "production") is None
    record = registry.alias_record(MODEL, "production")
    assert record is not None and (record["version"], record.get("weights")) == ("1", None)
