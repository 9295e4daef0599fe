"""SnapStart: containers restored from one snapshot draw their own random numbers.

A snapshot holds the process's memory, Python's `random` generator included, so every container
restored from it would make the same draws in the same order: each container's n-th request
routed alike on a split alias (an anonymous caller), captured alike (`sample`), copied to the
shadow alike. AWS asks for fresh entropy after a restore (docs.aws.amazon.com, "Handling
uniqueness with Lambda SnapStart"). Here a restore is what it is in memory: the generator's
state as the snapshot held it, then the registered after-restore hooks, then requests.
"""

from __future__ import annotations

import json
import random
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from infra.local.functions import load_handler_module
from tests.publishing import publish_linear

EVENTS = Path(__file__).resolve().parents[2] / "events"
REQUESTS = 24


def anonymous_predict(name: str) -> dict[str, Any]:
    """The golden predict event for model `name`, with no caller identity (routed at random)."""
    event = json.loads((EVENTS / "predict_simple.json").read_text())
    path = f"/models/{name}/predict"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["rawQueryString"], event["queryStringParameters"] = "", None
    event["requestContext"].pop("authorizer", None)
    event["body"] = json.dumps({"inputs": [[0.5, 1.0, -0.5, 2.0]]})
    return event


@pytest.fixture
def restore_hooks(monkeypatch: pytest.MonkeyPatch) -> list[Callable[[], None]]:
    """The hooks a handler registers with Lambda's `snapshot_restore_py`, in order."""
    hooks: list[Callable[[], None]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_after_restore = hooks.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake)
    return hooks


def test_containers_restored_from_one_snapshot_route_a_split_alias_apart(
    restore_hooks: list[Callable[[], None]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    publish_linear(registry, tmp_path, "m", "1", seed=1)
    publish_linear(registry, tmp_path, "m", "2", seed=2)
    registry.set_alias_weights("m", "production", {"1": 0.5, "2": 0.5})
    env = {
        "AIAAS_MODEL": "m",
        "AIAAS_MODEL_SELECTOR": "@production",
        "AIAAS_STORE": str(store),
        "AIAAS_CACHE_DIR": str(tmp_path / "cache"),
    }
    handler, _ = load_handler_module("functions.predict.handler.handler", env)
    event = anonymous_predict("m")

    def versions() -> list[str]:
        answers = [handler(event) for _ in range(REQUESTS)]
        assert {a["statusCode"] for a in answers} == {200}, answers[0]
        return [a["headers"]["x-aiaas-version"] for a in answers]

    for _ in range(50):  # the canary loads off the request path: wait until it answers
        if "2" in versions():
            break
    else:
        pytest.fail("version 2 of the split alias never answered")
    snapshot = random.getstate()  # what every restored container starts from

    def restored() -> list[str]:
        random.setstate(snapshot)
        for hook in restore_hooks:
            hook()
        return versions()

    first, second = restored(), restored()
    assert set(first) == set(second) == {"1", "2"}, (first, second)
    # 24 requests at 50/50 alike in both by chance: once in 2**24
    assert first != second, "both restored containers routed their requests alike"


def test_a_restored_control_plane_reseeds_its_jitter(
    restore_hooks: list[Callable[[], None]], tmp_path: Path
) -> None:
    """The control plane retries an alias move after a lost race with a random pause: restored
    containers pausing alike would race again in step."""
    env = {"AIAAS_STORE": str(tmp_path / "store")}
    load_handler_module("functions.control.handler.handler", env)
    snapshot = random.getstate()

    def restored() -> list[float]:
        random.setstate(snapshot)
        for hook in restore_hooks:
            hook()
        return [random.uniform(0, 1) for _ in range(4)]

    assert restored() != restored()
