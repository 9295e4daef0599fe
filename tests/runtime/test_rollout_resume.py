"""`aiaas rollout resume` takes over a rollout whose driver stopped, and only then: one driver a
rollout. A resume used to be accepted while the original `aiaas rollout` was alive and
checking, and two resumes at once were both accepted, leaving three processes judging one
rollout on their own metrics, each restarting the bake another one was judging."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import pytest

from functions.runtime.errors import Conflict
from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan, unwatched_after
from functions.runtime.rollout.record import RolloutBook, resumable
from functions.runtime.store import LocalStore
from infra.cli.rollout_follow import follow
from tests.rollout_models import baseline_and_candidate, driver_stopped

MODEL, ALIAS = "ro", "production"
PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01, min_requests=5)
PASSED = StepMetrics(VersionStats(100), VersionStats(100, 0, 5.0))


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    baseline_and_candidate(registry, tmp_path, MODEL, ALIAS)
    return registry


class Passing:
    """Every step passes; `begin` waits at `barrier` when given (resumes meeting there)."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.barrier = barrier

    def begin(self, model: str, since: float) -> None:
        if self.barrier is not None:
            self.barrier.wait(30)

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        return PASSED


def test_a_resume_of_a_rollout_its_driver_still_checks_is_refused_naming_it(
    registry: Registry,
) -> None:
    alice = RolloutEngine(registry, Passing())
    started = alice.start(MODEL, "2", PLAN, alias=ALIAS, actor="alice")
    alice.check(MODEL, ALIAS, "alice", started.id)
    before = RolloutBook(registry.store).require(MODEL, ALIAS)
    with pytest.raises(Conflict, match="is still driven by alice") as refused:
        RolloutEngine(registry, Passing()).resume(MODEL, ALIAS, "bob")
    assert refused.value.status == 409
    assert f"aiaas rollout abort {MODEL} --alias {ALIAS}" in refused.value.message
    after = RolloutBook(registry.store).require(MODEL, ALIAS)
    assert after == before  # not claimed, its bake not restarted


@pytest.mark.parametrize("short_by", [0.4, 0.6, 5.0])
def test_a_refused_resume_says_how_long_is_left(registry: Registry, short_by: float) -> None:
    """18.6 s quiet against 19 s read "heard from 19 s ago: ... quiet for 19 s" (hunt_races 3)."""
    started = RolloutEngine(registry, Passing()).start(MODEL, "2", PLAN, alias=ALIAS, actor="al")
    limit = unwatched_after(PLAN)
    heard = max([float(e["at"]) for e in started.log[-1:]] + [0.0])
    quiet = limit - short_by
    with pytest.raises(Conflict) as refused:
        resumable(started, heard + quiet)
    said = refused.value.message
    assert f"heard from {int(quiet)} s ago" in said, said
    assert f"quiet for {limit:g} s (another {math.ceil(short_by)} s;" in said, said


def test_of_resumes_racing_each_other_exactly_one_takes_the_rollout(registry: Registry) -> None:
    RolloutEngine(registry, Passing()).start(MODEL, "2", PLAN, alias=ALIAS, actor="alice")
    driver_stopped(registry, MODEL, ALIAS)
    # All three have read the quiet record and opened their metrics before any claims it.
    barrier = threading.Barrier(3)
    won, refused = [], []

    def resume(actor: str) -> None:
        try:
            won.append(RolloutEngine(registry, Passing(barrier)).resume(MODEL, ALIAS, actor))
        except Conflict as exc:
            refused.append(exc.message)

    threads = [threading.Thread(target=resume, args=(f"ci-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1 and len(refused) == 2, (won, refused)
    assert all(f"still driven by {won[0].log[-1]['by']}" in why for why in refused)
    record = RolloutBook(registry.store).require(MODEL, ALIAS)
    assert [e["event"] for e in record.log].count("resumed") == 1
    assert record == won[0]


def test_a_driver_whose_rollout_was_resumed_elsewhere_stops_and_leaves_it(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    # A driver stalled past the quiet limit (a machine suspended, a store away) comes back
    # after a resume took over: it used to go on driving next to the resumed one.
    alice = RolloutEngine(registry, Passing())
    started = alice.start(MODEL, "2", PLAN, alias=ALIAS, actor="alice")
    driver_stopped(registry, MODEL, ALIAS)
    bobs = RolloutEngine(registry, Passing()).resume(MODEL, ALIAS, "bob")
    alice.wait_s = lambda record: 0.0  # type: ignore[method-assign]
    assert follow(alice, started, "alice") == 1
    assert "no longer drives rollout" in capsys.readouterr().out
    record = RolloutBook(registry.store).require(MODEL, ALIAS)
    assert record == bobs and record.running  # no check, step or abort of hers written
    assert registry.alias_target(MODEL, ALIAS).describe() == "1 (90%) + 2 (10%)"  # type: ignore[union-attr]
