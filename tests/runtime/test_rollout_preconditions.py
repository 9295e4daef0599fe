"""Two operators (or an operator and a pipeline) managing one alias's rollouts, on both stores
(a directory and S3 on moto's server): a start or an abort made from a stale view of the
rollout is refused with a 412 that names the rollout now there and who started it, and changes
nothing; the rollout's ETag holds across its checks and steps; starts racing each other leave
exactly one rollout running."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from functions.runtime.errors import AiaasError, Conflict, PreconditionFailed
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.preconditions import RolloutPrecondition, rollout_etag
from functions.runtime.rollout.record import RolloutRecord, RolloutState
from functions.runtime.s3store import S3Store, make_s3_client
from functions.runtime.store import LocalStore, open_store
from infra.cli.rollout_commands import _NoMetrics
from tests.rollout_models import driver_stopped, publish

MODEL = "ro"
PLAN = RolloutPlan(steps=(0.1, 1.0), bake_s=60, max_error_rate=0.01)


@pytest.fixture(scope="module", params=["local", "s3"])
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Versions 1-3 published once per store (publishing is most of an S3 test's time)."""
    work = tmp_path_factory.mktemp("preconditions")
    if request.param == "local":
        registry = Registry(LocalStore(work / "store"))
    else:
        request.getfixturevalue("moto_server")
        bucket = f"aiaas-test-{uuid.uuid4().hex[:12]}"
        make_s3_client().create_bucket(Bucket=bucket)
        registry = Registry(S3Store(bucket, "registry"))
    for version in ("1", "2", "3"):
        publish(registry, work, MODEL, version, "healthy")
    return registry


@dataclass
class Alias:
    """An alias of its own for one test (its rollout record too), serving version 1."""

    registry: Registry
    name: str

    def engine(self, registry: Registry | None = None) -> RolloutEngine:
        return RolloutEngine(registry or self.registry, _NoMetrics())

    def start(
        self,
        version: str,
        actor: str,
        when: RolloutPrecondition | None = None,
        registry: Registry | None = None,
    ) -> RolloutRecord:
        engine = self.engine(registry)
        return engine.start(MODEL, version, PLAN, alias=self.name, actor=actor, when=when)

    def abort(self, actor: str, when: RolloutPrecondition | None = None) -> RolloutRecord:
        return self.engine().abort(MODEL, self.name, actor, when=when)

    def record(self) -> RolloutRecord:
        return self.engine().book.require(MODEL, self.name)

    def serves(self) -> str:
        target = self.registry.alias_target(MODEL, self.name)
        assert target is not None
        return target.describe()


@pytest.fixture
def alias(published: Registry) -> Alias:
    name = f"a{uuid.uuid4().hex[:10]}"
    published.set_alias(MODEL, name, "1", actor="ci")
    return Alias(published, name)


def test_a_stale_abort_is_refused_naming_the_newer_rollout_and_changes_nothing(
    alias: Alias,
) -> None:
    stale = rollout_etag(alias.start("2", "alice"))
    alias.abort("alice")
    newer = alias.start("3", "bob")
    serving = alias.serves()
    with pytest.raises(PreconditionFailed) as refused:
        alias.abort("carol", RolloutPrecondition(stale))
    assert refused.value.status == 412
    assert refused.value.message == (
        f"the rollout of ro@{alias.name} changed since you read it: rollout {newer.id} "
        f"(1 -> 3) is running at 10%, started by bob at {newer.started_at}; read it again "
        "(aiaas rollout status, or GET its ETag) and retry"
    )
    now = alias.record()
    assert (now.id, now.state, now.log) == (newer.id, RolloutState.RUNNING, newer.log)
    assert alias.serves() == serving and "3" in serving


def test_an_abort_with_the_current_etag_aborts_and_the_log_says_who_and_on_what(
    alias: Alias,
) -> None:
    etag = rollout_etag(alias.start("2", "alice"))
    aborted = alias.abort("carol", RolloutPrecondition(f'W/"x", {etag}'))
    assert aborted.state is RolloutState.ABORTED
    last = aborted.log[-1]
    assert (last["event"], last["by"]) == ("aborted", "carol")
    assert last["message"] == f'aborted by carol: If-Match: W/"x", {etag}'
    assert rollout_etag(aborted) != etag  # it ended: an If-Match on it no longer holds
    assert alias.serves() == "1"


def test_the_etag_holds_across_checks_and_steps_of_one_rollout(alias: Alias) -> None:
    """The record is rewritten at every check; an ETag of its bytes would be stale within a
    tenth of a bake, and a pipeline could never abort its own rollout with If-Match."""
    record = alias.start("2", "pipeline")
    driver_stopped(alias.registry, MODEL, alias.name)
    resumed = alias.engine().resume(MODEL, alias.name, "pipeline")  # rewrites the record
    assert resumed.log != record.log and rollout_etag(resumed) == rollout_etag(record)
    stepped = alias.engine()._enter(resumed, 1, "pipeline", "the next step")
    assert stepped.share() == 1.0 and rollout_etag(stepped) == rollout_etag(record)


def test_if_none_match_starts_only_when_no_rollout_runs(alias: Alias) -> None:
    idle = RolloutPrecondition(if_none_match="*")
    first = alias.start("2", "alice", idle)
    assert first.log[0]["message"] == "1 -> 2 (If-None-Match: *)"
    with pytest.raises(PreconditionFailed) as refused:
        alias.start("3", "pipeline", idle)
    assert refused.value.message.startswith(
        f"the rollout of ro@{alias.name} is not idle (If-None-Match: *): rollout {first.id} "
        "(1 -> 2) is running at 10%, started by alice"
    )
    assert alias.record().log == first.log
    alias.abort("alice")
    assert alias.start("3", "pipeline", idle).running  # a finished rollout is no obstacle


def test_if_match_starts_only_over_the_rollout_the_caller_saw(alias: Alias) -> None:
    with pytest.raises(PreconditionFailed, match="does not exist: no rollout of it yet"):
        alias.start("2", "alice", RolloutPrecondition('"abc"'))
    alias.start("2", "alice")
    seen = rollout_etag(alias.abort("alice"))
    newer = alias.start("3", "bob")  # alice never saw this one
    alias.abort("bob")
    with pytest.raises(PreconditionFailed, match=f"rollout {newer.id} \\(1 -> 3\\) is aborted"):
        alias.start("2", "alice", RolloutPrecondition(seen))
    assert alias.record().id == newer.id and alias.serves() == "1"
    current = rollout_etag(alias.record())
    assert alias.start("2", "alice", RolloutPrecondition(current)).running


def test_starts_racing_each_other_leave_exactly_one_rollout_running(alias: Alias) -> None:
    """Each caller with a store client of its own (a process, a Lambda container), released
    at once, with If-None-Match (without it the loser's answer is a 409; see the next test):
    one start wins; the other is refused and moves no traffic; the alias serves the winner's
    split. Round 1 creates the record, round 2 replaces a finished one."""
    when = RolloutPrecondition(if_none_match="*")
    callers = {v: Registry(open_store(alias.registry.store.uri)) for v in ("2", "3")}
    barrier = threading.Barrier(2)  # reused: it lets both through again each round
    for round_ in range(2):

        def go(version: str) -> RolloutRecord | AiaasError:
            barrier.wait()
            try:
                return alias.start(version, f"op{version}", when, callers[version])
            except (Conflict, PreconditionFailed) as exc:
                return exc

        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(go, callers))
        won = [a for a in answers if isinstance(a, RolloutRecord)]
        lost = [a for a in answers if isinstance(a, AiaasError)]
        assert len(won) == 1 and len(lost) == 1, answers
        assert lost[0].status == 412, lost[0].message
        now = alias.record()
        assert (now.id, now.running, len(now.history)) == (won[0].id, True, round_)
        assert alias.serves() == f"1 (90%) + {won[0].candidate} (10%)"
        alias.abort("ci")


@pytest.mark.parametrize("when", [None, RolloutPrecondition(if_none_match="*")])
def test_the_loser_of_a_race_is_told_of_the_winners_rollout_not_of_its_split(
    alias: Alias, when: RolloutPrecondition | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loser read the record before the winner claimed it, and the alias after the winner
    moved it (the race above, made certain): it was told "already splits traffic: promote or
    roll back first", a 409 even with If-None-Match, and advice that stops the winner."""
    winner = alias.start("2", "alice")
    loser = alias.engine()
    reads = []
    real_get = loser.book.get

    def get(name: str, alias_name: str) -> RolloutRecord | None:
        reads.append(name)  # its first read of the record: from before the winner's claim
        return None if len(reads) == 1 else real_get(name, alias_name)

    monkeypatch.setattr(loser.book, "get", get)
    with pytest.raises(AiaasError) as refused:
        loser.start(MODEL, "3", PLAN, alias=alias.name, actor="bob", when=when)
    assert refused.value.status == (412 if when else 409)
    assert f"rollout {winner.id}" in refused.value.message or (
        f"a rollout of ro@{alias.name} is running (version 2, started by alice)"
        in refused.value.message
    )
    assert "promote or roll back" not in refused.value.message and len(reads) == 2
