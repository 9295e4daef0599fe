"""A rollout plan a client sends to POST /control/models/{name}/rollouts, refused with a 400
that names what it lacks (not a Python TypeError about RolloutPlan.__init__)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests.rollout_models import publish

REQUIRED = "a rollout plan needs steps, bake_s and max_error_rate"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    root = tmp_path_factory.mktemp("plans")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2"):
        publish(registry, root, "ro", version, "healthy")
    registry.set_alias("ro", "production", "1")
    return TestClient(create_app(registry.store))


@pytest.mark.parametrize(
    ("plan", "lacks"),
    [
        ({"steps": [0.1, 1]}, "bake_s, max_error_rate"),
        ({"steps": [0.1, 1], "bake_s": 60}, "max_error_rate"),
        ({"steps": [0.1, 1], "max_error_rate": 0.01}, "bake_s"),
    ],
)
def test_a_plan_lacking_a_setting_is_a_400_naming_it(
    client: TestClient, plan: dict[str, object], lacks: str
) -> None:
    answer = client.post("/control/models/ro/rollouts", json={"version": "2", "plan": plan})
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "error": f"{REQUIRED}; this one lacks {lacks} (e.g. 'bake_s': 300, 'max_error_rate': 0.01)"
        },
    )
