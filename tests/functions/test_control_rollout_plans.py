"""A rollout plan a client sends to POST /control/models/{name}/rollouts, refused with a 400
that names what it lacks (not a Python TypeError about RolloutPlan.__init__)."""

from __future__ import annotations

import jsonschema
import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.errors import BadRequest
from functions.runtime.registry import Registry
from functions.runtime.rollout.plan import RolloutPlan
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


# Plans on either side of each limit. `steps` that do not rise or do not end at 1 are left
# out: the schema cannot say that, and its description does.
GOOD = {"steps": [0.1, 0.5, 1], "bake_s": 300, "max_error_rate": 0.01}
AT_AND_PAST_LIMITS = [
    GOOD,
    {**GOOD, "steps": [1]},
    {**GOOD, "steps": []},
    {**GOOD, "steps": [0, 1]},
    {**GOOD, "steps": [round(i / 21, 6) for i in range(1, 21)] + [1]},  # 21 steps
    {**GOOD, "bake_s": 0},  # a new rollout bakes at least 1 s (0 judged no step)
    {**GOOD, "bake_s": 0.5},
    {**GOOD, "bake_s": 1},
    {**GOOD, "bake_s": -1},
    {**GOOD, "bake_s": 7 * 24 * 3600},
    {**GOOD, "bake_s": 7 * 24 * 3600 + 1},
    {**GOOD, "max_error_rate": 0},
    {**GOOD, "max_error_rate": 1.5},
    {**GOOD, "max_p99_ms": 0},
    {**GOOD, "max_p99_ms": 0.5},
    {**GOOD, "min_agreement": 1},
    {**GOOD, "min_agreement": -0.1},
    {**GOOD, "min_requests": 0},
    {**GOOD, "min_requests": 2.5},
    {**GOOD, "min_requests": 10**9 + 1},
    {**GOOD, "shadow_sample": 0},
    {**GOOD, "shadow_sample": 1},
    {**GOOD, "settle_s": 30},
    {**GOOD, "settle_s": -5},
    {**GOOD, "bake": 300},  # a key it does not know
    {"steps": [0.1, 1], "bake_s": 60},
]


@pytest.mark.parametrize("plan", AT_AND_PAST_LIMITS, ids=lambda plan: repr(plan)[:60])
def test_the_openapi_plan_schema_accepts_what_a_start_accepts(
    client: TestClient, plan: dict[str, object]
) -> None:
    """A client generated from /openapi.json (or one validating against it) sends the plans
    the server takes: the schema was an open object ("steps, bake_s, ...")."""
    schema = client.get("/openapi.json").json()["components"]["schemas"]["RolloutStart"]
    valid = jsonschema.Draft202012Validator(schema["properties"]["plan"]).is_valid(plan)
    try:
        RolloutPlan.from_dict(plan).checked_new()
        accepted = True
    except BadRequest:
        accepted = False
    assert valid == accepted
