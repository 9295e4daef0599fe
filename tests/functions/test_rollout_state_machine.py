"""The rollout state machine, walked state by state against the real Rollout function code:
the registry on a real S3 server (moto, loopback), the metrics the real predict handler wrote
as EMF put into moto's CloudWatch as CloudWatch Logs would, and read back by the function's
CloudWatch source with GetMetricData. Between checks (the Wait state) callers send requests.

moto computes no percentiles, so latency is read there with "Maximum" (an upper bound of the
p99 the deployed function asks for); everything else is what runs in AWS.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest
import yaml

from functions.predict.service import PredictService
from functions.predict.telemetry import RequestMetrics
from functions.rollout.service import dispatch
from functions.runtime.cache import ArtifactCache
from functions.runtime.errors import Conflict
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.rollout.cloudwatch import CloudWatchMetrics
from functions.runtime.rollout.engine import RolloutEngine
from functions.runtime.rollout.plan import RolloutPlan
from functions.runtime.s3store import S3Store
from functions.runtime.served import ServedModel
from tests.emf_to_cloudwatch import put_emf
from tests.functions.test_batch_state_machine import path_get, resolve
from tests.functions.test_predict_events import http_event
from tests.rollout_models import publish

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "infra" / "statemachines" / "rollout.asl.json"
ROW = [[0.5, -1.0, 2.0, 0.25]]


class Callers:
    """The predict handler on the same registry, its EMF lines put into CloudWatch."""

    def __init__(self, store: S3Store, model: str, workdir: Path, cloudwatch: Any) -> None:
        self.out = io.StringIO()
        pool = ModelPool(Registry(store), ArtifactCache(store, workdir / "cache"))
        # The alias is re-resolved at the first request of each bake (`send`), as a container
        # does once AIAAS_ALIAS_TTL has passed since the step moved it. (TTL 0 re-read it from
        # S3 on every request: 35-40 ms each, 10-13 s a test.)
        self.served = ServedModel(pool, model, ttl=3600)
        self.service = PredictService(self.served, metrics=RequestMetrics(out=self.out))
        self.model, self.cloudwatch = model, cloudwatch
        self.statuses: list[tuple[str, int]] = []

    def send(self, count: int) -> None:
        self.served.expire()
        for i in range(count):
            body = json.dumps({"inputs": ROW})
            answer = self.service.handle(http_event("POST", f"/models/{self.model}/predict", body))
            self.statuses.append((answer["headers"]["x-aiaas-version"], answer["statusCode"]))
            if i == 0:  # a new canary loads off the request path, within the bake's minutes
                assert self.served.warmer.wait(30)
        self.service.metrics.flush()
        put_emf(self.cloudwatch, self.out.getvalue().splitlines())
        self.out.seek(0)
        self.out.truncate()


# States.Format('text with {} placeholders', $.a, $.b); in the text, ' { } and \ are escaped with \
_FORMAT = re.compile(r"States\.Format\('((?:[^'\\]|\\.)*)'((?:,\s*\$[.\w]+)*)\)", re.S)


def states_format(expression: str, document: Any) -> str:
    """An intrinsic States.Format of literal text and reference paths, as Step Functions runs it."""
    match = _FORMAT.fullmatch(expression)
    assert match is not None, f"not a States.Format of paths: {expression}"
    args = [str(path_get(document, a.strip())) for a in match[2].split(",")[1:]]
    text, out = match[1], []
    i = 0
    while i < len(text):
        if text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        elif text.startswith("{}", i):
            out.append(args.pop(0))
            i += 2
        else:
            assert text[i] not in "{}'", f"unescaped {text[i]!r} in {expression}"
            out.append(text[i])
            i += 1
    assert not args, f"more arguments than placeholders in {expression}"
    return "".join(out)


class Walker:
    """Runs the rollout definition: Task -> the Rollout function in process, Choice, Wait."""

    def __init__(self, engine: RolloutEngine, callers: Callers) -> None:
        self.engine, self.callers = engine, callers
        self.states: list[str] = []
        self.waits: list[int] = []
        self.cause: str | None = None  # a Fail state's, its CausePath evaluated
        self.started: dict[str, str] = {}  # the execution's input, as the control plane gives it
        # Each error a task raised (its name, as Lambda reports it) and whether a Retry of the
        # state names it: Step Functions matches names exactly, never a base class.
        self.errors: list[tuple[str, bool]] = []

    def run(self, document: dict[str, Any]) -> tuple[str, Any]:
        machine = json.loads(ASL.read_text())
        name = machine["StartAt"]
        for _ in range(100):
            state = machine["States"][name]
            self.states.append(name)
            kind = state["Type"]
            if kind in ("Succeed", "Fail"):
                if "CausePath" in state:
                    self.cause = states_format(state["CausePath"], document)
                return name, document
            if kind == "Choice":
                name = self.choose(state, document)
            elif kind == "Wait":
                self.waits.append(path_get(document, state["SecondsPath"]))
                # The bake: callers keep calling. 100 a bake, so a 10% step gets some of them
                # but for a chance of 0.9**100 (3e-5); with 30, 4% of runs gave it none.
                self.callers.send(100)
                name = state["Next"]
            else:
                document, name = self.task(state, document)
        raise AssertionError(f"no end after 100 states: {self.states}")

    @staticmethod
    def choose(state: dict[str, Any], document: Any) -> str:
        for choice in state["Choices"]:
            if path_get(document, choice["Variable"]) == choice["StringEquals"]:
                return str(choice["Next"])
        return str(state["Default"])

    def task(self, state: dict[str, Any], document: Any) -> tuple[Any, str]:
        """The task's output and the next state: its Catch's when it raised (as after its
        retries, which the walker does not repeat), the error at the Catch's ResultPath."""
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        parameters = resolve(state["Parameters"], document)
        assert parameters["FunctionName"] == "${RolloutFunctionArn}"
        payload = json.loads(json.dumps(parameters["Payload"]))  # as JSON crosses the wire
        try:
            result = {"Payload": json.loads(json.dumps(dispatch(self.engine, payload)))}
        except Exception as exc:
            name = type(exc).__name__
            named = {e for retrier in state.get("Retry", []) for e in retrier["ErrorEquals"]}
            self.errors.append((name, bool(named & {name, "States.ALL", "States.TaskFailed"})))
            (catch,) = state.get("Catch") or [None]
            if catch is None or catch["ErrorEquals"] != ["States.ALL"]:
                raise
            key = catch["ResultPath"].removeprefix("$.")
            assert key.isidentifier(), catch["ResultPath"]
            # As Step Functions gives a Lambda's error: its error response, as JSON, the Cause.
            response = {"errorMessage": str(exc), "errorType": name, "requestId": "r-1"}
            response["stackTrace"] = ['  File "/var/task/functions/rollout/handler.py", line 23']
            error = {"Error": name, "Cause": json.dumps(response)}
            return {**document, key: error}, str(catch["Next"])
        return path_get(result, state["OutputPath"]), str(state["Next"])


@pytest.fixture
def cloudwatch(moto_server: Any) -> Any:
    return boto3.client("cloudwatch", endpoint_url=moto_server.endpoint)


def setup(
    s3_store: S3Store, tmp_path: Path, cloudwatch: Any, kind: str, shadow: float | None = None
) -> tuple[Walker, str]:
    """`shadow`: the alias shadows the candidate at that sample before the rollout."""
    model = f"ro{uuid.uuid4().hex[:8]}"  # CloudWatch on the shared server: a model per test
    registry = Registry(s3_store)
    publish(registry, tmp_path, model, "1", "healthy")
    publish(registry, tmp_path, model, "2", kind)
    registry.set_alias(model, "production", "1")
    if shadow is not None:
        registry.set_shadow(model, "production", "2", shadow)
    callers = Callers(s3_store, model, tmp_path, cloudwatch)
    callers.send(20)
    source = CloudWatchMetrics(cloudwatch, latency_stat="Maximum")
    engine = RolloutEngine(registry, source)
    plan = RolloutPlan(
        steps=(0.1, 0.5, 1.0), bake_s=0, max_error_rate=0.01, max_p99_ms=1000, min_requests=5
    )
    started = engine.start(model, "2", plan, alias="production", actor="control-plane")
    walker = Walker(engine, callers)
    walker.started = {"model": model, "alias": "production", "id": started.id}  # as it starts it
    return walker, model


def test_a_healthy_candidate_walks_every_step_to_succeeded(s3_store, tmp_path, cloudwatch):
    walker, model = setup(s3_store, tmp_path, cloudwatch, "healthy")
    end, output = walker.run(walker.started)
    assert end == "Succeeded", (walker.states, output)
    record = walker.engine.book.require(model, "production")
    assert [e["event"] for e in record.log] == ["started", "step", "step", "step", "succeeded"]
    assert walker.states.count("Check") >= 4  # a step holds until its candidate has answered 5
    assert output["state"] == "succeeded" and output["share"] == 1.0
    assert all(isinstance(w, int) and w >= 1 for w in walker.waits)
    metrics = record.last_check["metrics"]["candidate"]  # type: ignore[index]
    assert metrics["requests"] > 0 and metrics["errors"] == 0 and metrics["p99_ms"] > 0
    assert Registry(s3_store).alias_target(model, "production").describe() == "2"  # type: ignore[union-attr]


def test_a_nan_candidate_ends_rolled_back(s3_store, tmp_path, cloudwatch):
    # The alias shadowed the candidate before: the first step, serving it, ended that shadow,
    # and the rollback left the alias without it (the record now keeps it to put back).
    walker, model = setup(s3_store, tmp_path, cloudwatch, "nan", shadow=0.25)
    end, output = walker.run(walker.started)
    assert end == "RolledBack", walker.states
    assert output["state"] == "rolled_back" and "error rate" in output["reason"]
    target = Registry(s3_store).alias_target(model, "production")
    assert target is not None and target.describe() == "1, shadow 2 (25% sampled)"
    walker.callers.statuses.clear()
    walker.callers.send(50)
    assert set(walker.callers.statuses) == {("1", 200)}
    # In one record, marked as a rollback's (it came back in a second record, unmarked, which
    # the second brake let through): the on-call's plain rollback after it is a 409.
    alias = Registry(s3_store).alias_record(model, "production")
    assert alias is not None and alias.get("rolled_back") is True, alias
    said = r"to 1, shadow 2 \(25% sampled\) from 1 \(90%\) \+ 2 \(10%\) by [\w-]+ \(rollout \w+\)"
    with pytest.raises(Conflict, match=said):
        Registry(s3_store).rollback(model, "production", actor="oncall")


def test_checks_failing_past_their_retries_abort_the_rollout(s3_store, tmp_path, cloudwatch):
    """CloudWatch unreachable (a dead endpoint): the execution used to fail with the alias
    still split and the record 'running', nothing watching it."""
    walker, model = setup(s3_store, tmp_path, cloudwatch, "healthy")
    dead = boto3.client(
        "cloudwatch",
        endpoint_url="http://127.0.0.1:9",
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    walker.engine.source = CloudWatchMetrics(dead, latency_stat="Maximum")
    end, output = walker.run(walker.started)
    assert end == "CheckFailed", walker.states
    assert walker.states == ["Check", "Abort", "CheckFailed"]
    # Retried for ~6 minutes first: botocore's EndpointConnectionError was not, so one failing
    # GetMetricData (a throttle, a blip) aborted the rollout at once.
    assert walker.errors == [("ServiceUnavailable", True)]
    record = walker.engine.book.require(model, "production")
    assert record.state.value == "aborted" and output["state"] == "aborted"
    # The error as the log keeps it: its type and message, not the response's JSON.
    message = str(record.log[-1]["message"])
    assert "its checks failed: ServiceUnavailable: CloudWatch GetMetricData failed: " in message
    assert "stackTrace" not in message
    assert Registry(s3_store).alias_target(model, "production").describe() == "1"  # type: ignore[union-attr]


def test_checks_and_abort_failing_past_their_retries_end_saying_how_to_finish(
    s3_store, s3_bucket, tmp_path, cloudwatch
):
    """The store unreachable: the checks fail, and so does the abort. The execution used to fail
    with the Lambda's error alone, the alias split and the record 'running'; it now ends in
    AbortFailed, whose cause names the rollout and the command that finishes it, and that
    command, run as given against the store, puts every request back on the baseline."""
    walker, model = setup(s3_store, tmp_path, cloudwatch, "healthy")
    dead = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        config=botocore.config.Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    live = walker.engine
    walker.engine = RolloutEngine(
        Registry(S3Store(s3_bucket, "registry", client=dead)), live.source
    )
    end, output = walker.run(walker.started)
    assert (end, walker.states) == ("AbortFailed", ["Check", "Abort", "AbortFailed"])
    # The check is retried (it raised StoreUnreachable, which "StoreError" does not match), then
    # the abort, retried on any error.
    assert walker.errors == [("StoreUnreachable", True), ("StoreUnreachable", True)]
    registry = Registry(s3_store)
    assert registry.alias_target(model, "production").describe() != "1"  # type: ignore[union-attr]
    assert live.book.require(model, "production").running
    cause = walker.cause or ""
    assert cause.startswith(f"The rollout of {model} (alias production) could not be checked")
    command = re.search(r"(aiaas rollout abort \S+ --alias \S+) \(", cause)
    assert command is not None, cause
    assert command[1] == f"aiaas rollout abort {model} --alias production"
    assert f"then aiaas rollout status {model} to see it aborted" in cause
    assert output["abort_error"]["Cause"] in cause
    # The command as the cause gives it, with AIAAS_STORE the stack's registry.
    argv = [sys.executable, "-m", "infra.cli.main", *shlex.split(command[1])[1:]]
    env = {**os.environ, "AIAAS_STORE": f"s3://{s3_bucket}/registry"}
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert registry.alias_target(model, "production").describe() == "1"  # type: ignore[union-attr]
    assert live.book.require(model, "production").state.value == "aborted"


def test_the_abort_is_retried_on_any_error_for_longer_than_the_checks():
    states = json.loads(ASL.read_text())["States"]
    (check,) = states["Check"]["Retry"]
    (abort,) = states["Abort"]["Retry"]
    assert abort["ErrorEquals"] == ["States.ALL"]  # idempotent: an ended rollout is left as is
    assert retried_s(abort) >= 30 * 60 > 5 * retried_s(check) / 2
    assert states["Abort"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.abort_error", "Next": "AbortFailed"}
    ]
    assert states["AbortFailed"]["Type"] == "Fail"


def retried_s(retrier: dict[str, Any]) -> float:
    """Seconds a retrier waits in all, as Step Functions backs off (jitter aside)."""
    interval, total = float(retrier["IntervalSeconds"]), 0.0
    for _ in range(retrier["MaxAttempts"]):
        total += min(interval, retrier.get("MaxDelaySeconds", float("inf")))
        interval *= retrier["BackoffRate"]
    return total


def test_template_wires_the_rollout_state_machine_least_privilege():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: node.value})
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    resources = template["Resources"]
    machine = resources["RolloutStateMachine"]["Properties"]
    assert (ROOT / machine["DefinitionUri"]).resolve() == ASL
    assert set(machine["DefinitionSubstitutions"]) == {"RolloutFunctionArn"}
    function = resources["RolloutFunction"]["Properties"]
    assert function["Handler"] == "functions.rollout.handler.handler"
    statements = [s for p in function["Policies"] for s in p["Statement"]]
    actions = {
        a
        for s in statements
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket", "cloudwatch:GetMetricData"}
    for statement in statements:
        resource = json.dumps(statement["Resource"])
        if statement["Action"] == "cloudwatch:GetMetricData":
            assert resource == '"*"'  # GetMetricData has no resource-level permissions
        else:
            assert "registry/models" in resource or "s3:prefix" in json.dumps(statement)


def test_every_retrier_naming_a_store_error_names_the_unreachable_store_too():
    """Step Functions matches a Lambda's error by its class name, not its base classes: an S3
    store that does not answer raises StoreUnreachable, which a retrier naming only StoreError
    let through to the Catch at the first try (the rollout's check, batch's plan and shards)."""
    from functions.runtime.errors import StoreError, StoreUnreachable

    assert issubclass(StoreUnreachable, StoreError)
    retriers = [
        (path.name, name, retrier)
        for path in sorted(ASL.parent.glob("*.asl.json"))
        for name, retrier in _retriers(json.loads(path.read_text()))
    ]
    naming = [(f, n) for f, n, r in retriers if "StoreError" in r["ErrorEquals"]]
    assert len(naming) >= 4, naming  # rollout's Check, batch's three
    missing = [
        (f, n)
        for f, n, r in retriers
        if "StoreError" in r["ErrorEquals"] and "StoreUnreachable" not in r["ErrorEquals"]
    ]
    assert missing == []


def _retriers(machine: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each Retry of each state, nested states (Map, Parallel) included."""
    found = []
    for name, state in machine.get("States", {}).items():
        found += [(name, retrier) for retrier in state.get("Retry", [])]
        for inner in [
            state.get("Iterator"),
            state.get("ItemProcessor"),
            *state.get("Branches", []),
        ]:
            if inner:
                found += _retriers(inner)
    return found
