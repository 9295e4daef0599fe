"""`aiaas rollout abort|status MODEL` finding no rollout running on its alias names the ones
running on the model's other aliases.

During an incident whose rollout ran on `staging`, `aiaas rollout abort clf` (production, the
default) said only "the rollout of clf@production is not running (it rolled_back); nothing to
abort", with no word of the split still live on staging. Real rollout engine and CLI on a
directory store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.main import EXIT_ERROR, EXIT_REFUSED, main
from infra.cli.rollout_commands import _NoMetrics
from tests.rollout_models import publish

PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
STAGING = "a rollout of ro@staging is running (1 -> 2, started by ci): aiaas rollout {} ro --alias staging"


def err_of(store: Path, capsys: pytest.CaptureFixture[str], code: int, *argv: str) -> str:
    capsys.readouterr()
    assert main(["--store", str(store), "rollout", *argv]) == code
    return capsys.readouterr().err


def test_the_running_rollout_of_another_alias_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    registry = Registry(LocalStore(store))
    for version in ("1", "2", "3"):
        publish(registry, tmp_path, "ro", version, "healthy")
    registry.set_alias("ro", "staging", "1")
    engine = RolloutEngine(registry, _NoMetrics())
    # production: no rollout yet; staging: one running
    engine.start("ro", "2", PLAN, alias="staging", actor="ci")
    err = err_of(store, capsys, EXIT_ERROR, "status", "ro")
    assert err == (
        "aiaas rollout: error: no rollout of model 'ro' on alias 'production'; "
        f"{STAGING.format('status')}\n"
    )
    # production: a rollout that ended
    registry.set_alias("ro", "production", "1")
    engine.start("ro", "3", PLAN, alias="production", actor="ci")
    engine.abort("ro", "production", "ci")
    err = err_of(store, capsys, EXIT_REFUSED, "abort", "ro")
    assert err == (
        "aiaas rollout: error: the rollout of ro@production is not running (it aborted); "
        f"nothing to abort; {STAGING.format('abort')}\n"
    )
    # the advice works as given; once staging's is over there is nothing more to name
    assert main(["--store", str(store), "rollout", "abort", "ro", "--alias", "staging"]) == 0
    err = err_of(store, capsys, EXIT_REFUSED, "abort", "ro")
    assert err == (
        "aiaas rollout: error: the rollout of ro@production is not running (it aborted); "
        "nothing to abort\n"
    )
