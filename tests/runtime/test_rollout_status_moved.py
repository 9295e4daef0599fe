"""`aiaas rollout status` says when the alias was moved by hand under a running rollout. It
printed "running (step 10%)" while the alias served what a person had promoted, until a check
came, and forever when no driver was left to make one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.registry import Registry
from functions.runtime.rollout.attention import moved_by_others
from functions.runtime.rollout.decision import SHADOW_STAGE
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.store import LocalStore
from infra.cli.main import run
from infra.cli.rollout_commands import _NoMetrics
from tests.rollout_models import publish

MODEL, ALIAS = "ro", "production"


@pytest.fixture
def store(tmp_path: Path) -> str:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2", "3"):
        publish(registry, tmp_path, MODEL, version, "healthy")
    registry.set_alias(MODEL, ALIAS, "1")
    plan = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)
    RolloutEngine(registry, _NoMetrics()).start(MODEL, "2", plan, alias=ALIAS, actor="x")
    return str(tmp_path / "store")


def test_status_says_a_promote_by_hand_took_the_alias(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["--store", store, "rollout", "status", MODEL]) == 0
    assert "NOT IN EFFECT" not in capsys.readouterr().out  # the split is the rollout's own
    assert run(["--store", store, "promote", MODEL, "3"]) == 0
    said = capsys.readouterr().err  # the person promoting learns of the rollout
    assert f"note: the rollout of {MODEL}@{ALIAS} (1 -> 2, by x) was running" in said
    assert run(["--store", store, "rollout", "status", MODEL]) == 0
    out = capsys.readouterr().out
    assert "running (step 10%" in out  # the record, as it stands
    assert "NOT IN EFFECT: the alias was moved outside the rollout (it serves 3)" in out
    assert f"aiaas rollout abort {MODEL} --alias {ALIAS}` ends it" in out
    # As said: the abort ends it and leaves the alias as the person set it.
    assert run(["--store", store, "rollout", "abort", MODEL]) == 0
    target = Registry(LocalStore(store)).alias_target(MODEL, ALIAS)
    assert target is not None and target.describe() == "3"


@pytest.mark.parametrize("by_hand", ["2", "1"])
def test_an_abort_leaves_the_candidate_or_baseline_a_person_promoted(
    store: str, capsys: pytest.CaptureFixture[str], by_hand: str
) -> None:
    """A promote by hand of the candidate itself (or of the baseline, ending the split) is not
    undone by an abort either: the abort moved the alias back to 1 from a hand-promoted 2."""
    assert run(["--store", store, "promote", MODEL, by_hand]) == 0
    assert run(["--store", store, "rollout", "abort", MODEL]) == 0
    registry = Registry(LocalStore(store))
    target = registry.alias_target(MODEL, ALIAS)
    assert target is not None and target.describe() == by_hand
    record = registry.alias_record(MODEL, ALIAS)
    assert record is not None and record["updated_by"].find("rollout") < 0  # the person's move
    capsys.readouterr()


def test_a_weight_changed_by_hand_is_a_move_status_and_json_say(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the versions were compared: a canary cut from 10% to 1% by hand read as the
    rollout's own split (`not_in_effect` null), and its next step overwrote it."""
    assert run(["--store", store, "promote", MODEL, "2", "--weight", "0.01"]) == 0
    assert "its driver's next check ends it as superseded" in capsys.readouterr().err
    assert run(["--store", store, "rollout", "status", MODEL, "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert (said["state"], said["not_in_effect"]) == (
        "running",
        "the alias was moved outside the rollout (it serves 1 (99%) + 2 (1%))",
    )
    assert run(["--store", store, "rollout", "abort", MODEL]) == 0  # leaves it as set
    target = Registry(LocalStore(store)).alias_target(MODEL, ALIAS)
    assert target is not None and target.describe() == "1 (99%) + 2 (1%)"


def test_a_shadow_sample_changed_by_hand_in_the_shadow_stage_is_a_move(tmp_path: Path) -> None:
    registry = Registry(LocalStore(tmp_path / "store"))
    for version in ("1", "2"):
        publish(registry, tmp_path, MODEL, version, "healthy")
    registry.set_alias(MODEL, "staging", "1")
    plan = RolloutPlan(
        steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01, min_agreement=0.9, shadow_sample=0.2
    )
    engine = RolloutEngine(registry, _NoMetrics())
    record = engine.start(MODEL, "2", plan, alias="staging", actor="x")
    assert record.step == SHADOW_STAGE and moved_by_others(registry, record) is None
    registry.set_shadow(MODEL, "staging", "2", 0.5)
    assert moved_by_others(registry, record) == (
        "the alias was moved outside the rollout (it serves 1, shadow 2 (50% sampled)); left as is"
    )
    ended = engine.abort(MODEL, "staging", "ops")
    assert ended.log[-1]["message"].endswith("left as is")
    target = registry.alias_target(MODEL, "staging")
    assert target is not None and target.describe() == "1, shadow 2 (50% sampled)"
