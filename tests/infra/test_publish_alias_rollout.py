"""`aiaas publish --alias` over a running rollout: like a promote by hand it ends the rollout
(superseded at its driver's next check), and now says so as `aiaas promote` does; it said
nothing, and the person who published learnt only later that a rollout had been stopped."""

from __future__ import annotations

from pathlib import Path

from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook
from functions.runtime.store import LocalStore
from tests import onnx_factory
from tests.infra.test_cli_rollout import aiaas
from tests.rollout_models import baseline_and_candidate

MODEL, ALIAS = "ro", "production"
PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01, min_requests=5)


class Passing:
    def begin(self, model: str, since: float) -> None:
        pass

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        return StepMetrics(VersionStats(100), VersionStats(100, 0, 5.0))


def test_publish_with_the_alias_of_a_running_rollout_says_it_supersedes_it(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    registry = baseline_and_candidate(Registry(LocalStore(store)), tmp_path, MODEL, ALIAS)
    started = RolloutEngine(registry, Passing()).start(MODEL, "2", PLAN, alias=ALIAS, actor="al")
    model = onnx_factory.linear_classifier(tmp_path / "three.onnx", seed=3)
    done = aiaas(store, "publish", str(model), "--name", MODEL, "--alias", ALIAS)
    assert done.returncode == 0, done.stderr
    assert f"{MODEL}@{ALIAS} -> 3" in done.stdout
    assert (
        f"the rollout of {MODEL}@{ALIAS} (1 -> 2, by al) was running: its driver's next check "
        "ends it as superseded and leaves the alias as set here"
    ) in done.stderr, done.stderr
    assert RolloutBook(registry.store).require(MODEL, ALIAS).id == started.id
    # The same publish again (already published, the alias already there) moves nothing: no note.
    again = aiaas(store, "publish", str(model), "--name", MODEL, "--version", "3", "--alias", ALIAS)
    assert again.returncode == 0, again.stderr
    assert "the rollout of" not in again.stderr, again.stderr
