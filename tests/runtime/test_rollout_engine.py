"""The rollout engine driving the real predict handler in process: each check reads the
Prometheus families the handler's requests fed (what `aiaas serve`'s /metrics renders), moves
the alias in a real directory registry, and the handler serves the move from its next
request. A healthy candidate ends at 100%; a NaN one is rolled back on its first errors; one
that cannot load is rolled back at the end of its bake; one that disagrees is caught as a
shadow before any caller sees it."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.runtime.aliases import AliasTarget
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import BadRequest, Conflict, InvalidInput
from functions.runtime.manifest import ModelFile, ModelManifest, TensorSpec
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.rollout.record import RolloutRecord, RolloutState
from functions.runtime.rollout.same_inputs import difference
from functions.runtime.served import ServedModel
from functions.runtime.store import LocalStore
from functions.shadow.channel import ReplayChannel
from infra.local.metrics import GatewayMetrics
from infra.local.rollout_metrics import GatewayMetricsSource
from tests import onnx_factory
from tests.functions.test_predict_events import http_event
from tests.functions.test_predict_shadow import replay_env
from tests.rollout_models import driver_stopped, publish, rows_disagreeing

MODEL = "ro"
ROW = [[0.5, -1.0, 2.0, 0.25]]
ACTOR = "tester"


class Setup:
    def __init__(self, tmp_path: Path, candidate: str) -> None:
        self.registry = Registry(LocalStore(tmp_path / "store"))
        publish(self.registry, tmp_path, MODEL, "1", "healthy")
        publish(self.registry, tmp_path, MODEL, "2", candidate)
        self.registry.set_alias(MODEL, "production", "1")
        pool = ModelPool(self.registry, ArtifactCache(self.registry.store, tmp_path / "cache"))
        metrics = RequestMetrics(emf=False)
        self.gateway = GatewayMetrics()
        metrics.observe(self.gateway)
        # The shadow's copies go to a real replay process reading this test's store.
        sink = ReplayChannel(replay_env(tmp_path), metrics.shadow_observed, metrics.shadow_dropped)
        served = ServedModel(pool, MODEL, ttl=3600)
        self.service = PredictService(served, metrics=metrics, shadow_sink=sink)
        source = GatewayMetricsSource(lambda: self.gateway.render()[0].decode())
        self.engine = RolloutEngine(self.registry, source)
        self.answers: list[tuple[str, int]] = []
        self.send(5)  # serving the baseline, as a gateway is when a rollout starts

    def send(self, count: int, rows: list[list[float]] | None = None) -> None:
        for i in range(count):
            row = ROW if rows is None else [rows[i % len(rows)]]
            body = json.dumps({"inputs": row})
            response = self.service.handle(http_event("POST", f"/models/{MODEL}/predict", body))
            version = response["headers"].get("x-aiaas-version", "-")
            self.answers.append((version, response["statusCode"]))
        self.service.shadow.drain(10)

    def run(self, plan: RolloutPlan, per_check: int = 40) -> RolloutRecord:
        record = self.engine.start(MODEL, "2", plan, alias="production", actor=ACTOR)
        # Bounded by time, not by a count of checks: a step's verdict may need two bakes of
        # wall time, which 200 quick checks did not always span on a fast or idle machine.
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if not record.running:
                return record
            self.send(per_check)
            record = self.engine.check(MODEL, "production", ACTOR)
        raise AssertionError(f"the rollout did not end: {record}")


def plan(**changes: object) -> RolloutPlan:
    doc: dict[str, object] = {"steps": (0.1, 0.5, 1.0), "bake_s": 0.0, "max_error_rate": 0.01}
    return RolloutPlan(**{**doc, **changes})  # type: ignore[arg-type]


def test_a_healthy_candidate_ends_serving_everything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(tmp_path, "healthy")
    with caplog.at_level(logging.INFO, "aiaas.rollout"):
        record = setup.run(plan(max_p99_ms=1000.0))
    assert caplog.records[-1].message.endswith("succeeded: the last step baked within every limit")
    assert caplog.records[-1].levelno == logging.INFO  # was WARNING, on the CLI's stderr
    assert record.state is RolloutState.SUCCEEDED, record.log
    assert [e["event"] for e in record.log] == ["started", "step", "step", "step", "succeeded"]
    assert setup.registry.alias_target(MODEL, "production").describe() == "2"  # type: ignore[union-attr]
    history = setup.registry.alias_record(MODEL, "production")["history"]  # type: ignore[index]
    assert history[0]["weights"] == {"1": 0.5, "2": 0.5}
    assert history[0]["updated_by"] == f"{ACTOR} (rollout {record.id})"
    assert {status for _, status in setup.answers} == {200}
    assert record.last_check["metrics"]["candidate"]["p99_ms"] is not None  # type: ignore[index]


def test_a_nan_candidate_is_rolled_back_on_its_first_errors(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "nan")
    record = setup.run(plan(bake_s=60.0))
    assert record.state is RolloutState.ROLLED_BACK
    assert "error rate" in record.log[-1]["message"]
    errors = [a for a in setup.answers if a[1] >= 500]
    assert errors and {v for v, _ in errors} == {"2"}
    # Rolled back at the first check that saw them (the share of a whole step's load is
    # checked against `aiaas serve` in tests/infra/test_rollout_serve.py).
    assert [e["event"] for e in record.log] == ["started", "step", "rolled_back"]
    setup.answers.clear()
    setup.send(200)
    assert Counter(setup.answers) == Counter({("1", 200): 200})


def test_a_candidate_that_cannot_load_is_rolled_back_after_its_bake(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "broken")
    record = setup.run(plan(bake_s=0.5, min_requests=10))
    assert record.state is RolloutState.ROLLED_BACK
    assert "answered none of" in record.log[-1]["message"]
    assert {a for a in setup.answers} == {("1", 200)}  # the previous state kept serving
    assert setup.service.served.last_error is not None


def test_a_disagreeing_candidate_is_caught_as_a_shadow(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "other")
    rows = rows_disagreeing(0.3, 100)
    record = setup.engine.start(
        MODEL, "2", plan(min_agreement=0.98, bake_s=60.0), alias="production", actor=ACTOR
    )
    assert record.step == -1
    setup.send(100, rows)
    record = setup.engine.check(MODEL, "production", ACTOR)
    assert record.state is RolloutState.ROLLED_BACK
    # ~0.70: 30% of the rows were made to disagree.
    assert re.match(r"agreement with the baseline 0\.[67]\d\d ", record.log[-1]["message"])
    assert {a for a in setup.answers} == {("1", 200)}  # no caller ever saw it
    assert setup.registry.alias_target(MODEL, "production").shadow is None  # type: ignore[union-attr]


def test_one_disagreeing_row_among_the_first_does_not_roll_back_a_candidate_that_agrees(
    tmp_path: Path,
) -> None:
    """A shadow answers no caller, so agreement is judged on a sample where one row cannot
    decide it: a candidate agreeing on 99% (limit 98%) whose one disagreement came first stays."""
    setup = Setup(tmp_path, "other")
    first, rest = rows_disagreeing(1.0, 1), rows_disagreeing(0.0, 99)
    record = setup.engine.start(
        MODEL, "2", plan(min_agreement=0.98, bake_s=60.0), alias="production", actor=ACTOR
    )
    for rows in (first, rest[:20], rest[20:]):
        setup.send(len(rows), rows)
        record = setup.engine.check(MODEL, "production", ACTOR)
        assert record.running, record.log[-1]
    shadow = record.last_check["metrics"]["shadow"]  # type: ignore[index]
    assert (shadow["rows"], shadow["agreed"]) == (100, 99)
    setup.engine.abort(MODEL, "production", ACTOR)


def test_one_rollout_at_a_time_abort_and_moves_by_others(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "healthy")
    setup.engine.start(MODEL, "2", plan(bake_s=60.0), alias="production", actor=ACTOR)
    with pytest.raises(Conflict, match="a rollout of ro@production is running"):
        setup.engine.start(MODEL, "2", plan(), alias="production", actor="other")
    aborted = setup.engine.abort(MODEL, "production", "ops")
    assert (aborted.state, aborted.log[-1]["message"]) == (RolloutState.ABORTED, "aborted by ops")
    assert setup.registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="not running"):
        setup.engine.abort(MODEL, "production", "ops")
    again = setup.engine.start(MODEL, "2", plan(bake_s=60.0), alias="production", actor=ACTOR)
    assert again.history[0]["state"] == "aborted"
    setup.registry.set_alias(MODEL, "production", "1")  # someone promotes by hand meanwhile
    moved = setup.engine.check(MODEL, "production", ACTOR)
    assert moved.state is RolloutState.SUPERSEDED
    assert setup.registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": (0.5, 0.1, 1.0)}, "steps must rise"),
        ({"steps": (0.1, 0.5)}, "the last step must send all traffic"),
        ({"max_error_rate": 2}, "max_error_rate must be at least 0 and at most 1"),
        ({"bake_s": -1}, "bake must be at least 1 s and at most 604,800 s"),
        ({"min_agreement": float("nan")}, "min_agreement must be a number"),
    ],
)
def test_bad_plans_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        plan(**changes)


def test_a_rollout_needs_an_alias_serving_another_version(tmp_path: Path) -> None:
    setup = Setup(tmp_path, "healthy")
    with pytest.raises(Conflict, match="already serves '1'"):
        setup.engine.start(MODEL, "1", plan(), alias="production", actor=ACTOR)
    with pytest.raises(Conflict, match="points at no version yet"):
        setup.engine.start(MODEL, "2", plan(), alias="staging", actor=ACTOR)


def test_a_rollout_whose_driver_died_before_its_first_move_resumes_by_making_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed between writing the record and moving the alias (a SIGKILL has no handler): the
    # resumed rollout's first check called the unmoved alias "moved outside the rollout".
    setup = Setup(tmp_path, "healthy")

    def killed(*args: object, **kwargs: object) -> None:
        raise SystemExit(137)

    with monkeypatch.context() as patched:
        patched.setattr(setup.engine, "_enter", killed)
        with pytest.raises(SystemExit):
            setup.engine.start(MODEL, "2", plan(), alias="production", actor=ACTOR)
    assert setup.registry.alias_target(MODEL, "production").describe() == "1"  # type: ignore[union-attr]
    driver_stopped(setup.registry, MODEL, "production")
    resumed = setup.engine.resume(MODEL, "production", ACTOR)
    assert [e["event"] for e in resumed.log] == ["started", "resumed", "step"]
    assert "resumed: its first move never made" in str(resumed.log[-1]["message"])
    assert setup.registry.alias_target(MODEL, "production").describe() == "1 (90%) + 2 (10%)"  # type: ignore[union-attr]
    setup.send(40)
    assert setup.engine.check(MODEL, "production", ACTOR).running


def test_a_shadow_of_another_version_stays_through_a_rollout_without_agreement(
    tmp_path: Path,
) -> None:
    # Refused before, with "a rollout with --min-agreement shadows the candidate" to a rollout
    # that had no --min-agreement: without a shadow stage the alias's shadow is not in the way.
    setup = Setup(tmp_path, "healthy")
    publish(setup.registry, tmp_path, MODEL, "3", "healthy")
    setup.registry.set_shadow(MODEL, "production", "3", 0.5)
    with pytest.raises(Conflict, match="shadows version '3'; a rollout with --min-agreement"):
        setup.engine.start(MODEL, "2", plan(min_agreement=0.9), alias="production", actor=ACTOR)
    started = setup.engine.start(MODEL, "2", plan(), alias="production", actor=ACTOR)
    assert started.running
    target = setup.registry.alias_target(MODEL, "production")
    assert target is not None and target.describe() == "1 (90%) + 2 (10%), shadow 3 (50% sampled)"
    setup.engine.abort(MODEL, "production", "ops")
    target = setup.registry.alias_target(MODEL, "production")
    assert target is not None and target.describe() == "1, shadow 3 (50% sampled)"


def test_a_candidate_that_takes_other_inputs_is_refused_before_any_caller_sees_it(
    tmp_path: Path,
) -> None:
    """A candidate of 3 features where production reads 4 answered its whole share 422, and
    the rollout went on to 100% ("baked within every limit": the error rate counts 5xx)."""
    setup = Setup(tmp_path, "healthy")
    path = onnx_factory.linear_classifier(tmp_path / "three.onnx", features=3)
    labels = setup.registry.manifest(MODEL, "1").labels
    setup.registry.publish(onnx_factory.manifest_for(path, MODEL, "3", labels=labels), path)
    with pytest.raises(InvalidInput) as info:
        setup.engine.start(MODEL, "3", plan(), alias="production", actor=ACTOR)
    assert info.value.message == (
        f"version 3 of {MODEL} does not take the requests 1 takes (its input 'x' takes shape "
        "[-1, 3], not [-1, 4]): the callers of 'production' would get a 422 from it; publish a "
        "candidate with the same inputs"
    )
    assert setup.registry.alias_target(MODEL, "production") == AliasTarget("1")
    assert setup.engine.book.get(MODEL, "production") is None


def test_what_a_candidate_must_take() -> None:
    def manifest(*inputs: TensorSpec, features: tuple[str, ...] = ()) -> ModelManifest:
        file = ModelFile("0" * 64, 1, 17, "test")
        return ModelManifest("m", "1", "other", inputs, (), file, features=features)

    base = manifest(TensorSpec("x", "float32", (-1, 4)), features=("a", "b", "c", "d"))
    assert difference(base, base) is None
    wider = manifest(TensorSpec("x", "float32", (-1, -1)), features=("d", "c", "b", "a"))
    assert difference(base, wider) is None  # any width takes 4; features in another order
    cases = {
        "its input 'x' is float64, not float32": manifest(TensorSpec("x", "float64", (-1, 4))),
        "its input 'x' refuses NaN and infinity, which the baseline takes": manifest(
            TensorSpec("x", "float32", (-1, 4), finite=True), features=base.features
        ),
        "it has no input 'x'": manifest(TensorSpec("y", "float32", (-1, 4))),
        "it reads no feature 'd', which records sent to the baseline name": manifest(
            TensorSpec("x", "float32", (-1, 4)), features=("a", "b", "c", "e")
        ),
    }
    for why, candidate in cases.items():
        assert difference(base, candidate) == why
    two = manifest(TensorSpec("x", "float32", (-1, 4)), TensorSpec("k", "int64", (-1,)))
    assert difference(manifest(TensorSpec("x", "float32", (-1, 4))), two) == (
        "it also needs input 'k', which the baseline's callers do not send"
    )
