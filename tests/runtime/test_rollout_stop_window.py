"""`aiaas rollout` stopped by a signal at any instant aborts its rollout. A fresh-clone CI run
caught a SIGHUP that landed just after the start had moved the alias and before the loop that
aborts on a stop: the process exited 1 with the split live and the record "running". And a bad
`--retry-for` used to be refused only after the rollout had started, leaving it unwatched.

The signals here are real (`os.kill` of this process, handled by the CLI's own handlers, in the
main thread); only the gateway's metrics are a stand-in (`_NoMetrics`)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook, RolloutRecord, RolloutState
from functions.runtime.store import LocalStore
from infra.cli import rollout_commands
from infra.cli.main import run
from tests.rollout_models import baseline_and_candidate, driver_stopped

pytestmark = pytest.mark.usefixtures("stop_signals_as_in_a_terminal")

MODEL, ALIAS = "ro", "production"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    registry = Registry(LocalStore(tmp_path / "store"))
    baseline_and_candidate(registry, tmp_path, MODEL, ALIAS)
    monkeypatch.setattr(rollout_commands, "_source", lambda args: rollout_commands._NoMetrics())
    return str(tmp_path / "store")


def signalled_on_return(
    monkeypatch: pytest.MonkeyPatch, method: str, signums: tuple[int, ...]
) -> None:
    """The engine's `method` returns, and `signums` arrive as it does: the window between the
    rollout moving and the CLI's loop taking over."""
    real: Callable[..., RolloutRecord] = getattr(RolloutEngine, method)

    def moved_then_signalled(self: RolloutEngine, *args: Any, **kwargs: Any) -> RolloutRecord:
        record = real(self, *args, **kwargs)
        for signum in signums:
            os.kill(os.getpid(), signum)
        return record

    monkeypatch.setattr(RolloutEngine, method, moved_then_signalled)


def assert_aborted(store: str, why: str) -> RolloutRecord:
    registry = Registry(LocalStore(store))
    record = RolloutBook(registry.store).require(MODEL, ALIAS)
    assert record.state is RolloutState.ABORTED, record.log
    assert why in record.log[-1]["message"]
    assert registry.alias_target(MODEL, ALIAS).describe() == "1"  # type: ignore[union-attr]
    return record


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_as_the_start_returns_aborts_the_rollout(
    store: str, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    signalled_on_return(monkeypatch, "start", (signum,))
    code = run(["--store", store, "rollout", MODEL, "2", "--bake", "60s"])
    assert code == 128 + signum
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    assert_aborted(store, f"stopped ({name})")


def test_a_signal_as_a_resume_returns_aborts_the_rollout(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(LocalStore(store))
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
    RolloutEngine(registry, rollout_commands._NoMetrics()).start(
        MODEL, "2", plan, alias=ALIAS, actor="killed-driver"
    )
    driver_stopped(registry, MODEL, ALIAS)
    signalled_on_return(monkeypatch, "resume", (signal.SIGTERM,))
    assert run(["--store", store, "rollout", "resume", MODEL]) == 128 + signal.SIGTERM
    assert_aborted(store, "stopped (SIGTERM)")


def test_a_second_signal_during_the_start_cuts_it_short_and_still_aborts(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first signal waits for the start to finish; a second one (a start stuck on the
    store, Ctrl-C pressed again) is raised at once, and the start aborts what it had begun."""
    real_enter = RolloutEngine._enter

    def stuck(self: RolloutEngine, *args: Any, **kwargs: Any) -> RolloutRecord:
        os.kill(os.getpid(), signal.SIGTERM)  # kept for later: the start goes on
        os.kill(os.getpid(), signal.SIGTERM)  # raised now, inside the start
        return real_enter(self, *args, **kwargs)

    monkeypatch.setattr(RolloutEngine, "_enter", stuck)
    assert run(["--store", store, "rollout", MODEL, "2"]) == 128 + signal.SIGTERM
    record = RolloutBook(LocalStore(store)).require(MODEL, ALIAS)
    assert record.state is RolloutState.ABORTED
    assert "could not start" in record.log[-1]["message"]


def test_the_signal_handlers_are_put_back(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signalled_on_return(monkeypatch, "start", (signal.SIGTERM,))
    run(["--store", store, "rollout", MODEL, "2"])
    assert {s: signal.getsignal(s) for s in before} == before


@pytest.mark.parametrize("flag", ["--retry-for", "--bake", "--alias-ttl"])
def test_a_bad_duration_is_refused_before_anything_moves(
    store: str, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:  # --bake: a usage error (exit 2, argparse's SystemExit); the others refused after
        code = run(["--store", store, "rollout", MODEL, "2", flag, "soon"])
    except SystemExit as usage:
        code = int(str(usage.code))
    assert code != 0
    assert f"{flag}: a duration is a number" in capsys.readouterr().err
    assert RolloutBook(LocalStore(store)).get(MODEL, ALIAS) is None  # no rollout began
    alias = Registry(LocalStore(store)).alias_target(MODEL, ALIAS)
    assert alias is not None and alias.describe() == "1"
