"""Why an alias moved: `reason` kept in the state each move writes (promote, canary, split,
shadow, rollback, deletion, a rollout's moves), on a real directory registry and S3 (moto).
Before it, the record said who and when; nothing said why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.runtime.alias_deleted import deleted_record
from functions.runtime.errors import BadRequest
from functions.runtime.move_reason import MAX_REASON, checked_reason, fitted_reason
from functions.runtime.refs import alias_key
from functions.runtime.registry import Registry
from functions.runtime.rollout.decision import StepMetrics, VersionStats
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutState
from functions.runtime.settings import RuntimeSettings
from functions.runtime.store import LocalStore, ObjectStore
from tests.rollout_models import baseline_and_candidate, publish

MODEL = "churn"
WHY = "CHG-1234: fixes false declines"
PLAN = RolloutPlan(steps=(0.5, 1.0), bake_s=10, max_error_rate=0.01, settle_s=0, min_requests=5)
BREACHED = StepMetrics(VersionStats(100), VersionStats(100, 50, 5.0))  # the candidate errs


class Metrics:
    """A metrics source whose candidate errs: the first check rolls it back."""

    def begin(self, model: str, since: float) -> None:
        return None

    def measure(
        self, model: str, baseline: str, candidate: str, since: float, alias: str = ""
    ) -> StepMetrics:
        return BREACHED


@pytest.fixture
def registry(store: ObjectStore, tmp_path: Path) -> Registry:
    """A directory store and S3 (moto's server on loopback): conftest's `store`."""
    reg = Registry(store)
    for version in ("1", "2", "3"):
        publish(reg, tmp_path, MODEL, version, "healthy")
    return reg


def test_each_move_keeps_its_reason_and_the_history_carries_it(registry: Registry) -> None:
    registry.set_alias(MODEL, "production", "1", actor="ann")  # no reason: no key, as before
    registry.set_alias(MODEL, "production", "2", weight=0.1, actor="bob", reason=WHY)
    registry.set_alias_weights(MODEL, "production", {"1": 0.5, "2": 0.5}, reason="CHG-2 half")
    registry.set_shadow(MODEL, "production", "3", 0.5, reason="CHG-3 shadow the next one")
    record = registry.rollback(MODEL, "production", reason="  INC-7: p99 doubled  ")

    assert record["reason"] == "INC-7: p99 doubled"  # trimmed
    assert record["rolled_back"] is True
    said = [entry.get("reason") for entry in record["history"]]
    assert said == ["CHG-3 shadow the next one", "CHG-2 half", WHY, None]
    assert "reason" not in record["history"][-1]  # the first move said none: no key written
    assert record["history"][2]["updated_by"] == "bob"
    stored = json.loads(registry.store.get_bytes(alias_key(MODEL, "production")))
    assert stored["reason"] == "INC-7: p99 doubled"


def test_a_deletion_keeps_why_beside_the_state_it_ended(registry: Registry) -> None:
    registry.set_alias(MODEL, "staging", "2", reason=WHY)
    registry.delete_alias(MODEL, "staging", actor="cat", reason="INC-9: staging retired")
    kept = deleted_record(registry.store, MODEL, "staging")
    assert kept is not None
    assert (kept["reason"], kept["deleted_reason"], kept["deleted_by"]) == (
        WHY,
        "INC-9: staging retired",
        "cat",
    )
    restored = registry.rollback(MODEL, "staging", reason="INC-9 undone")
    assert restored["reason"] == "INC-9 undone"
    assert restored["history"][0]["deleted_reason"] == "INC-9: staging retired"
    assert restored["history"][0]["reason"] == WHY


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("x" * (MAX_REASON + 1), f"the reason is {MAX_REASON + 1} characters; at most 500"),
        ("CHG-1\nforged line", r"a control character ('\n' at character 6)"),
        ("CHG-1 \x1b]0;pwned\x07", r"a control character ('\x1b' at character 7)"),
        ("CHG-1 \u202egnp.exe", r"a control character ('\u202e' at character 7)"),
    ],
)
def test_an_unfit_reason_is_refused_and_nothing_is_written(
    registry: Registry, reason: str, said: str
) -> None:
    registry.set_alias(MODEL, "production", "1")
    before = registry.store.get_bytes(alias_key(MODEL, "production"))
    for move in (
        lambda: registry.set_alias(MODEL, "production", "2", reason=reason),
        lambda: registry.set_alias(MODEL, "production", "2", weight=0.2, reason=reason),
        lambda: registry.set_shadow(MODEL, "production", "2", reason=reason),
        lambda: registry.rollback(MODEL, "production", reason=reason),
        lambda: registry.delete_alias(MODEL, "production", force=True, reason=reason),
    ):
        with pytest.raises(BadRequest) as refused:
            move()
        assert said in refused.value.message
        assert refused.value.status == 400
    assert registry.store.get_bytes(alias_key(MODEL, "production")) == before


def test_the_longest_reason_kept_is_kept_whole(registry: Registry) -> None:
    longest = "é" * MAX_REASON  # characters, not bytes
    record = registry.set_alias(MODEL, "production", "1", reason=longest)
    assert record["reason"] == longest


def test_a_record_without_reasons_reads_as_before(registry: Registry) -> None:
    old = {"alias": "production", "version": "1", "updated_at": "t0", "updated_by": "old",
           "history": [{"version": "2", "updated_at": "t-1", "updated_by": "older"}]}  # fmt: skip
    registry.store.put_bytes(alias_key(MODEL, "production"), json.dumps(old).encode())
    record = registry.alias_record(MODEL, "production")
    assert record is not None and "reason" not in record
    assert record["history"] == old["history"]
    moved = registry.set_alias(MODEL, "production", "3", reason=WHY)
    assert "reason" not in moved["history"][0]  # carried on as it was stored


def test_a_reason_that_is_not_text_in_a_hand_written_record_is_left_out(
    registry: Registry,
) -> None:
    raw = {"version": "1", "reason": 7, "history": [{"version": "2", "reason": ["x"]}]}
    registry.store.put_bytes(alias_key(MODEL, "production"), json.dumps(raw).encode())
    record = registry.alias_record(MODEL, "production")
    assert record is not None
    assert "reason" not in record and "reason" not in record["history"][0]


def test_require_reason_is_read_with_the_settings() -> None:
    assert RuntimeSettings.from_env({}).require_reason is False
    assert RuntimeSettings.from_env({"AIAAS_REQUIRE_REASON": "1"}).require_reason is True
    with pytest.raises(Exception, match="AIAAS_REQUIRE_REASON must be true or false"):
        RuntimeSettings.from_env({"AIAAS_REQUIRE_REASON": "maybe"})
    with pytest.raises(BadRequest, match=r"AIAAS_REQUIRE_REASON is on\): give --reason TEXT"):
        checked_reason("  ", required=True, how="--reason TEXT")
    assert checked_reason(None) is None


def test_a_worded_reason_is_fitted_not_refused() -> None:
    fitted = fitted_reason("error rate 0.5 > 0.01\n" + "y" * 600)
    assert checked_reason(fitted) == fitted
    assert len(fitted) == MAX_REASON and "\n" not in fitted


def test_a_rollout_carries_its_reasons_into_its_log_and_the_alias_history(
    tmp_path: Path,
) -> None:
    registry = baseline_and_candidate(
        Registry(LocalStore(tmp_path / "store")), tmp_path, MODEL, "production"
    )
    engine = RolloutEngine(registry, Metrics())
    started = engine.start(MODEL, "2", PLAN, alias="production", actor="dan", reason=WHY)
    assert started.started_reason == WHY
    assert started.to_dict()["started_reason"] == WHY
    assert started.log[0]["event"] == "started" and started.log[0]["reason"] == WHY
    first = registry.alias_record(MODEL, "production")
    assert first is not None and first["weights"] == {"1": 0.5, "2": 0.5}
    assert (first["reason"], first["updated_by"]) == (WHY, f"dan (rollout {started.id})")

    ended = engine.check(MODEL, "production", "dan")  # the candidate errs: rolled back
    assert ended.state is RolloutState.ROLLED_BACK
    back = registry.alias_record(MODEL, "production")
    assert back is not None and back["version"] == "1" and "weights" not in back
    assert back["reason"] == fitted_reason(ended.log[-1]["message"])  # why it was rolled back
    assert "error" in back["reason"]
    assert back["history"][0]["reason"] == WHY


def test_an_abort_keeps_its_reason(tmp_path: Path) -> None:
    registry = baseline_and_candidate(
        Registry(LocalStore(tmp_path / "store")), tmp_path, MODEL, "production"
    )
    engine = RolloutEngine(registry, Metrics())
    engine.start(MODEL, "2", PLAN, alias="production", actor="dan")  # none said: none kept
    first = registry.alias_record(MODEL, "production")
    assert first is not None and "reason" not in first
    with pytest.raises(BadRequest, match="control character"):
        engine.abort(MODEL, "production", "eve", reason="INC-1\r\nok")
    assert engine.book.require(MODEL, "production").running  # the refusal changed nothing
    ended = engine.abort(MODEL, "production", "eve", reason="INC-1: pager")
    assert ended.state is RolloutState.ABORTED
    assert ended.log[-1]["reason"] == "INC-1: pager"
    assert ended.log[-1]["message"] == "aborted by eve: INC-1: pager"
    assert ended.summary()["reason"] == "aborted by eve: INC-1: pager"
    back = registry.alias_record(MODEL, "production")
    assert back is not None and (back["version"], back["reason"]) == ("1", "INC-1: pager")
