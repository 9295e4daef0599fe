"""A rollout's driver (the `aiaas rollout` process, a state machine execution) drives its own
rollout only. Alice's rollout is aborted by Bob, who starts the same version again with a plan
of his own: Alice's driver used to adopt Bob's rollout (the record is per alias), judged it on
its own window, aborted it on Ctrl-C, and a check of hers that was measuring when Bob acted
moved his alias to her next step."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutRecord, RolloutState
from functions.runtime.store import LocalStore
from infra.cli.rollout_commands import _NoMetrics
from infra.cli.rollout_follow import StopRequest, _say_starved, follow
from tests.rollout_models import baseline_and_candidate, driver_stopped

MODEL, ALIAS = "ro", "production"
ALICE = RolloutPlan(steps=(0.1, 0.5, 1.0), bake_s=0, max_error_rate=0.01, min_requests=5)
BOB = RolloutPlan(steps=(0.05, 1.0), bake_s=600, max_error_rate=0.01)
PASSED = StepMetrics(VersionStats(100), VersionStats(100, 0, 5.0))  # the step would advance


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    registry = Registry(LocalStore(tmp_path / "store"))
    baseline_and_candidate(registry, tmp_path, MODEL, ALIAS)
    return registry


def bob_replaces(registry: Registry) -> RolloutRecord:
    bob = RolloutEngine(registry, _NoMetrics())
    bob.abort(MODEL, ALIAS, "bob")
    return bob.start(MODEL, "2", BOB, alias=ALIAS, actor="bob")


class BobActsWhileMeasured:
    """Metrics read slowly (CloudWatch, a gateway far away): Bob acts during the read."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.bobs: list[RolloutRecord] = []

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        self.bobs.append(bob_replaces(self.registry))
        return PASSED


def assert_bobs_runs_untouched(registry: Registry, bobs: RolloutRecord) -> None:
    now = RolloutEngine(registry, _NoMetrics()).book.require(MODEL, ALIAS)
    assert (now.id, now.state, now.step, now.log) == (bobs.id, RolloutState.RUNNING, 0, bobs.log)
    target = registry.alias_target(MODEL, ALIAS)
    assert target is not None and target.describe() == "1 (95%) + 2 (5%)"


def test_a_check_measuring_while_its_rollout_is_replaced_moves_nothing(
    registry: Registry,
) -> None:
    source = BobActsWhileMeasured(registry)
    engine = RolloutEngine(registry, source)
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    answer = engine.check(MODEL, ALIAS, "alice", alices.id)
    (bobs,) = source.bobs
    assert answer.id == bobs.id  # what the driver learns: not its rollout any more
    assert_bobs_runs_untouched(registry, bobs)  # was: 1 (50%) + 2 (50%), Bob's record at 5%


def test_a_driver_does_not_adopt_the_rollout_that_replaced_its_own(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    bobs = bob_replaces(registry)  # between two of Alice's checks
    engine.wait_s = lambda record: 0.0  # type: ignore[method-assign]
    assert follow(engine, alices, "alice") == 1
    assert f"rollout {alices.id} is over: rollout {bobs.id} (1 -> 2, started by bob) " in (
        capsys.readouterr().out
    )
    assert_bobs_runs_untouched(registry, bobs)


def test_ctrl_c_on_a_driver_whose_rollout_was_replaced_leaves_the_new_one_running(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    bobs = bob_replaces(registry)

    def interrupted(record: Any) -> float:
        raise KeyboardInterrupt  # Ctrl-C lands in the wait between checks

    engine.wait_s = interrupted  # type: ignore[method-assign]
    assert follow(engine, alices, "alice") == 130
    assert f"rollout {alices.id} is over: rollout {bobs.id}" in capsys.readouterr().out
    assert_bobs_runs_untouched(registry, bobs)  # was: aborted by alice's Ctrl-C


def test_ctrl_c_still_aborts_the_drivers_own_rollout(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RolloutEngine(registry, _NoMetrics())
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")

    def interrupted(record: Any) -> float:
        raise KeyboardInterrupt

    engine.wait_s = interrupted  # type: ignore[method-assign]
    assert follow(engine, alices, "alice") == 130
    now = engine.book.require(MODEL, ALIAS)
    assert (now.id, now.state) == (alices.id, RolloutState.ABORTED)
    # Its own guard (If-Match on its rollout) is no condition of Alice's: not in the log.
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .endswith("aborted     aborted by alice: the aiaas rollout process was stopped (Ctrl-C)")
    )
    assert (
        now.log[-1]["message"] == "aborted by alice: the aiaas rollout process was stopped (Ctrl-C)"
    )
    assert registry.alias_target(MODEL, ALIAS).describe() == "1"  # type: ignore[union-attr]


class NoTraffic:
    """A gateway no caller uses: every step bakes and then waits for traffic."""

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        return StepMetrics(VersionStats(), VersionStats())


def test_a_step_waiting_for_traffic_says_so_once(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = RolloutEngine(registry, NoTraffic())
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    waits = iter(range(5))

    def wait_s(record: Any) -> float:
        if next(waits) == 4:  # four checks, then Ctrl-C
            raise KeyboardInterrupt
        return 0.0

    engine.wait_s = wait_s  # type: ignore[method-assign]
    assert follow(engine, alices, "alice") == 130
    held = [line for line in capsys.readouterr().out.splitlines() if "holding" in line]
    # It printed nothing while it waited, for as long as no caller came.
    assert len(held) == 1 and "baked; waiting for traffic: 0 of 5 requests" in held[0]


class SignalledWhileMeasured(NoTraffic):
    """`kill` lands while a check reads the gateway's /metrics (most of a check's time)."""

    def __init__(self, stop: StopRequest) -> None:
        self.stop, self.calls = stop, 0

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        self.calls += 1
        if self.calls == 1:
            self.stop(signal.SIGTERM, None)  # as the signal handler runs it
        return super().measure(model, baseline, candidate, since)


def test_sigterm_during_a_check_aborts_the_rollout(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    # Stopped was caught as a failing check ("check fails ... retrying"), the next check passed,
    # and the process ran on with the split live: `kill` never ended it.
    stop = StopRequest()
    source = SignalledWhileMeasured(stop)
    engine = RolloutEngine(registry, source)
    alices = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    waits = iter(range(5))

    def wait_s(record: Any) -> float:
        if next(waits) == 4:  # the test's own way out if the signal is swallowed
            raise KeyboardInterrupt
        return 0.0

    engine.wait_s = wait_s  # type: ignore[method-assign]
    assert follow(engine, alices, "alice", stop=stop) == 128 + signal.SIGTERM
    assert source.calls == 1
    now = engine.book.require(MODEL, ALIAS)
    assert now.state is RolloutState.ABORTED
    assert now.log[-1]["message"].endswith("was stopped (SIGTERM)")
    assert "check fails" not in capsys.readouterr().out
    assert registry.alias_target(MODEL, ALIAS).describe() == "1"  # type: ignore[union-attr]


def test_a_resumed_step_does_not_say_it_baked_on_the_dead_drivers_check(
    registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    # The killed driver's last check ("baked; waiting for traffic") was printed again, with its
    # old time, right under "resumed: the 10% step bakes again from now".
    engine = RolloutEngine(registry, NoTraffic())
    started = engine.start(MODEL, "2", ALICE, alias=ALIAS, actor="alice")
    held = engine.check(MODEL, ALIAS, "alice", started.id)
    assert str((held.last_check or {})["reason"]).startswith("baked; waiting for traffic")
    driver_stopped(registry, MODEL, ALIAS)
    resumed = engine.resume(MODEL, ALIAS, "alice")

    def interrupted(record: Any) -> float:
        raise KeyboardInterrupt

    engine.wait_s = interrupted  # type: ignore[method-assign]
    assert follow(engine, resumed, "alice") == 130
    out = capsys.readouterr().out
    assert "resumed" in out and "holding" not in out


def test_a_dead_drivers_hold_in_the_resumes_own_millisecond_is_not_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """CI (a fast moment) checked and resumed within one millisecond: the dead driver's "baked;
    waiting for traffic" was printed under the resume, its `at` equal to the step's start."""
    check = {"action": "hold", "at": 1000.123, "time": "t", "reason": "baked; waiting for traffic"}
    record = RolloutRecord(
        "id", MODEL, ALIAS, "1", "2", ALICE, "t", "alice", step_started=1000.1234, last_check=check
    )
    assert _say_starved(record, None) is None
    assert capsys.readouterr().out == ""
