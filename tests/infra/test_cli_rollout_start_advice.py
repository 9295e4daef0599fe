"""A rollout start refused by a running rollout names commands that deal with THAT rollout.

It said `abort it first (aiaas rollout abort MODEL)` whatever the alias: for a staging rollout
that command aborted production's rollout, or was refused as "not running". And a CI job
retried after its runner was killed found its own rollout still running, undriven, and was told
only to abort it (every request back on the old version), where `rollout resume` takes it on.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutBook, RolloutRecord
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_REFUSED, main
from infra.cli.rollout_commands import _NoMetrics
from tests.rollout_models import publish

MODEL = "ro"
PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)


def started(store: Path, tmp_path: Path, alias: str) -> RolloutRecord:
    registry = Registry(LocalStore(store))
    for version in ("1", "2", "3"):
        publish(registry, tmp_path, MODEL, version, "healthy")
    registry.set_alias(MODEL, "production", "1")
    registry.set_alias(MODEL, alias, "1")
    engine = RolloutEngine(registry, _NoMetrics())
    return engine.start(MODEL, "2", PLAN, alias=alias, actor="ci")


def refused(store: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["--store", str(store), "rollout", *argv]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("aiaas rollout: error: ")
    return err


def test_a_staging_rollout_in_the_way_is_named_with_its_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    started(store, tmp_path, "staging")
    err = refused(store, capsys, MODEL, "3", "--alias", "staging")
    assert "a rollout of ro@staging is running (version 2, started by ci)" in err
    assert "abort it first (aiaas rollout abort ro --alias staging)" in err
    assert "aiaas rollout status ro --alias staging" in err
    assert "resume" not in err  # its driver is alive: nothing to take over
    # The advice works as given (the old `aiaas rollout abort ro` was refused: production
    # runs no rollout)
    assert main(["--store", str(store), "rollout", "abort", "ro", "--alias", "staging"]) == 0
    assert not RolloutBook(LocalStore(store)).require(MODEL, "staging").running


def test_a_retried_job_meeting_its_undriven_rollout_is_told_to_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    record = started(store, tmp_path, "production")
    book = RolloutBook(LocalStore(store))
    # Its driver was SIGKILLed 5 minutes ago (a runner lost): no check or log entry since.
    aged = dataclasses.replace(
        record,
        log=tuple({**entry, "at": entry["at"] - 300} for entry in record.log),
        last_check=None,
    )
    book.update(MODEL, "production", lambda current: aged)
    err = refused(store, capsys, MODEL, "2")
    assert "a rollout of ro@production is running (version 2, started by ci), but nothing " in err
    assert "has driven it for 30" in err  # 300 s and the moments the test took
    assert "resume it (aiaas rollout resume ro --alias production [--metrics URL])" in err
    assert "or abort it first (aiaas rollout abort ro --alias production)" in err
    assert book.require(MODEL, "production") == aged  # the refusal changed nothing
