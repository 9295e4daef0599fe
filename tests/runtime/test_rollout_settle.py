"""A step's settle counts from the moment its move is written. A server that read the alias
just before the write ended keeps it one TTL from that read: a step clock read before a slow
write (an S3 PUT retried) judged the first seconds after the settle on the split before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import REREAD_MARGIN_S, RolloutPlan
from functions.runtime.rollout.record import RolloutRecord
from functions.runtime.rollout.settle import settle_s
from functions.runtime.s3store import S3Store
from functions.runtime.served import REFRESH_WAIT_S
from functions.runtime.store import LocalStore
from tests.rollout_models import baseline_and_candidate, publish

MODEL, ALIAS = "ro", "production"
WRITE_S = 3.0  # how long each alias write takes
PLAN = RolloutPlan(steps=(0.5, 1.0), bake_s=10, max_error_rate=0.01, settle_s=60, min_requests=5)
PASSED = StepMetrics(VersionStats(100), VersionStats(100, 0, 5.0))  # the step would advance


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowRegistry(Registry):
    """Each alias write takes WRITE_S on `clock`."""

    def __init__(self, store: LocalStore, clock: Clock) -> None:
        super().__init__(store)
        self.clock = clock

    def set_alias_weights(self, *args: Any, **kwargs: Any) -> Any:
        self.clock.now += WRITE_S
        return super().set_alias_weights(*args, **kwargs)

    def set_alias(self, *args: Any, **kwargs: Any) -> Any:
        self.clock.now += WRITE_S
        return super().set_alias(*args, **kwargs)


class Windows:
    """Passing metrics; remembers when each window opened."""

    def __init__(self) -> None:
        self.opened: list[float] = []
        self.measured: list[float] = []

    def begin(self, model: str, since: float) -> None:
        self.opened.append(since)

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        self.measured.append(since)
        return PASSED


class Unreadable(Windows):
    def begin(self, model: str, since: float) -> None:
        raise ConnectionError("no gateway there")


@pytest.fixture
def slow(tmp_path: Path) -> tuple[SlowRegistry, Clock]:
    clock = Clock()
    registry = SlowRegistry(LocalStore(tmp_path / "store"), clock)
    baseline_and_candidate(registry, tmp_path, MODEL, ALIAS)
    clock.now = 1000.0
    return registry, clock


def test_a_step_is_not_judged_until_its_settle_has_passed_since_the_write_ended(
    slow: tuple[SlowRegistry, Clock],
) -> None:
    registry, clock = slow
    windows = Windows()
    engine = RolloutEngine(registry, windows, clock=clock)
    record = engine.start(MODEL, "2", PLAN, alias=ALIAS, actor="tester")
    moved = 1000.0 + WRITE_S
    # Was 1000.0: the clock read before the write, 3 s of the settle spent writing.
    assert record.step_started == moved
    # The metrics window opens before the move, so none of the new split's answers is missed
    # (the first is the read before anything is written: an unreadable source is refused).
    assert windows.opened == [1000.0, 1000.0] and record.window == 1000.0
    clock.now = moved + PLAN.settle_s + PLAN.bake_s - 0.5
    held = engine.check(MODEL, ALIAS, "tester", record.id)
    assert (held.step, held.last_check["action"]) == (0, "hold"), held.last_check  # type: ignore[index]
    clock.now += 0.5
    checked_at = clock.now
    advanced = engine.check(MODEL, ALIAS, "tester", record.id)
    assert advanced.step == 1 and advanced.step_started == checked_at + WRITE_S
    assert windows.opened[1:] == [1000.0, checked_at] and windows.measured == [1000.0, 1000.0]
    assert registry.alias_target(MODEL, ALIAS).describe() == "2"  # type: ignore[union-attr]


def test_resuming_a_first_move_never_made_starts_the_clock_after_making_it(
    slow: tuple[SlowRegistry, Clock],
) -> None:
    registry, clock = slow
    engine = RolloutEngine(registry, Windows(), clock=clock)
    # Its driver was killed between writing the record and moving the alias.
    claimed = RolloutRecord("abc", MODEL, ALIAS, "1", "2", PLAN, "now", "x", step_started=1.0)
    engine.book.update(MODEL, ALIAS, lambda _: claimed)
    clock.now = 2000.0
    resumed = engine.resume(MODEL, ALIAS, "tester")
    assert resumed.step_started == 2000.0 + WRITE_S  # was 2000.0, before the move
    assert registry.alias_target(MODEL, ALIAS).describe() == "1 (50%) + 2 (50%)"  # type: ignore[union-attr]


def test_a_start_whose_metrics_cannot_be_read_moves_no_traffic(
    slow: tuple[SlowRegistry, Clock],
) -> None:
    registry, _ = slow
    history = registry.alias_record(MODEL, ALIAS)["history"]  # type: ignore[index]
    with pytest.raises(ConnectionError):
        RolloutEngine(registry, Unreadable()).start(MODEL, "2", PLAN, alias=ALIAS, actor="t")
    assert registry.alias_record(MODEL, ALIAS)["history"] == history  # type: ignore[index]
    # Nothing written: it was a rollout "started", then "aborted" in the alias's history.
    assert RolloutEngine(registry, Windows()).book.get(MODEL, ALIAS) is None


def test_the_settle_is_the_ttl_and_a_margin_for_the_reread_on_s3_and_0_on_a_directory(
    s3_store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIAAS_ALIAS_TTL", "45")
    assert REREAD_MARGIN_S >= 2 * REFRESH_WAIT_S  # the wait the re-reading request gives it
    on_s3 = Registry(s3_store)
    publish(on_s3, tmp_path, MODEL, "1", "healthy")
    on_s3.set_alias(MODEL, ALIAS, "1")
    assert settle_s(on_s3, MODEL, ALIAS) == 45 + REREAD_MARGIN_S
    local = Registry(LocalStore(tmp_path / "store"))
    publish(local, tmp_path, MODEL, "1", "healthy")
    local.set_alias(MODEL, ALIAS, "1")
    assert settle_s(local, MODEL, ALIAS) == 0
