"""A rollout that rolls back or is aborted leaves the alias as it was before it, shadow included.
A user's shadow of the candidate was lost: the shadow stage (--min-agreement) took it over at
its own sample and the rollback removed it, and a canary step serving the candidate ended it
and the rollback never put it back. The record keeps the shadow the alias had at the start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from functions.runtime.aliases import Shadow
from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import ShadowStats, StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutRecord, RolloutState
from functions.runtime.store import LocalStore
from tests.rollout_models import publish

MODEL, ALIAS = "ro", "production"
STEPS = RolloutPlan(steps=(0.1, 1.0), bake_s=0, max_error_rate=0.01, min_requests=5)
FAILING = StepMetrics(VersionStats(100), VersionStats(100, 50, 5.0))  # the candidate's 5xx
PASSED = StepMetrics(VersionStats(100), VersionStats(100, 0, 5.0))


class Scripted:
    """Metrics as the test says: each check pops the next."""

    def __init__(self, *metrics: StepMetrics) -> None:
        self.metrics = list(metrics)

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        return self.metrics.pop(0)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with ro:1, :2, :3 (published once; each test copies it)."""
    root = tmp_path_factory.mktemp("prior-shadow")
    registry = Registry(LocalStore(root / "store"))
    for version in ("1", "2", "3"):
        publish(registry, root, MODEL, version, "healthy")
    return root / "store"


def registry_with(published: Path, tmp_path: Path, shadow: tuple[str, float] | None) -> Registry:
    registry = Registry(LocalStore(shutil.copytree(published, tmp_path / "store")))
    registry.set_alias(MODEL, ALIAS, "1")
    if shadow is not None:
        registry.set_shadow(MODEL, ALIAS, shadow[0], shadow[1])
    return registry


def described(registry: Registry) -> str:
    target = registry.alias_target(MODEL, ALIAS)
    assert target is not None
    return target.describe()


def test_an_aborted_shadow_stage_gives_back_the_users_shadow_of_the_candidate(
    published: Path, tmp_path: Path
) -> None:
    registry = registry_with(published, tmp_path, ("2", 0.2))
    engine = RolloutEngine(registry, Scripted())
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=600, max_error_rate=0.01, min_agreement=0.98)
    record = engine.start(MODEL, "2", plan, alias=ALIAS, actor="alice")
    assert record.prior_shadow == Shadow("2", 0.2)
    assert described(registry) == "1, shadow 2 (100% sampled)"  # the stage's sample
    engine.abort(MODEL, ALIAS, "alice")
    assert described(registry) == "1, shadow 2 (20% sampled)"  # was "1": the shadow gone


@pytest.mark.parametrize("steps_done", [0, 1])  # rolled back at 10%, and at 100%
def test_a_rollback_gives_back_the_shadow_a_step_serving_the_candidate_ended(
    published: Path, tmp_path: Path, steps_done: int
) -> None:
    registry = registry_with(published, tmp_path, ("2", 0.2))
    engine = RolloutEngine(registry, Scripted(*[PASSED] * steps_done, FAILING))
    engine.start(MODEL, "2", STEPS, alias=ALIAS, actor="alice")
    assert described(registry) == "1 (90%) + 2 (10%)"  # a version served is no shadow
    for _ in range(steps_done):
        assert engine.check(MODEL, ALIAS, "alice").running
    record = engine.check(MODEL, ALIAS, "alice")
    assert record.state is RolloutState.ROLLED_BACK
    assert described(registry) == "1, shadow 2 (20% sampled)"


def test_the_stages_own_shadow_ends_and_another_versions_stays(
    published: Path, tmp_path: Path
) -> None:
    registry = registry_with(published, tmp_path, None)
    engine = RolloutEngine(registry, Scripted())
    plan = RolloutPlan(steps=(1.0,), bake_s=600, max_error_rate=0.01, min_agreement=0.98)
    assert engine.start(MODEL, "2", plan, alias=ALIAS, actor="alice").prior_shadow is None
    engine.abort(MODEL, ALIAS, "alice")
    assert described(registry) == "1"
    registry.set_shadow(MODEL, ALIAS, "3", 0.5)
    engine = RolloutEngine(registry, Scripted(FAILING))
    engine.start(MODEL, "2", STEPS, alias=ALIAS, actor="alice")
    engine.check(MODEL, ALIAS, "alice")
    assert described(registry) == "1, shadow 3 (50% sampled)"


def test_a_record_written_before_the_field_is_read(published: Path, tmp_path: Path) -> None:
    registry = registry_with(published, tmp_path, ("2", 0.2))
    engine = RolloutEngine(registry, Scripted(FAILING))
    started = engine.start(MODEL, "2", STEPS, alias=ALIAS, actor="alice")
    doc = started.to_dict()
    assert doc["prior_shadow"] == {"version": "2", "sample": 0.2}
    del doc["prior_shadow"]
    old = RolloutRecord.from_dict(doc)
    assert old.prior_shadow is None and old.to_dict()["prior_shadow"] is None


SHADOW_PASSED = StepMetrics(
    VersionStats(100), VersionStats(0), ShadowStats(copies=100, rows=100, agreed=100)
)


@pytest.mark.parametrize(
    ("shadow", "after"), [(None, "1"), (("2", 0.2), "1, shadow 2 (20% sampled)")]
)
def test_a_rollback_by_hand_after_a_rollout_leaves_no_shadow_of_its_shadow_stage(
    published: Path, tmp_path: Path, shadow: tuple[str, float] | None, after: str
) -> None:
    # A rollout with --min-agreement that succeeded, then `aiaas rollback`: the alias came back
    # as "1, shadow 2 (100% sampled)", the rollout's shadow stage kept for good as a shadow of
    # the version just rolled back from; the alias shadowed nothing (or 2 at 20%) before.
    registry = registry_with(published, tmp_path, shadow)
    engine = RolloutEngine(registry, Scripted(SHADOW_PASSED, PASSED, PASSED))
    plan = RolloutPlan(steps=(0.5, 1.0), bake_s=0, max_error_rate=0.01, min_requests=5,
                       min_agreement=0.9)  # fmt: skip
    engine.start(MODEL, "2", plan, alias=ALIAS, actor="alice")
    assert described(registry) == "1, shadow 2 (100% sampled)"
    while (record := engine.check(MODEL, ALIAS, "alice")).running:
        pass
    assert record.state is RolloutState.SUCCEEDED and described(registry) == "2"
    registry.rollback(MODEL, ALIAS, actor="bob")
    assert described(registry) == after
