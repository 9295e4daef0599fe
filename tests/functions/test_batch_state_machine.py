"""The Distributed Map state machine, walked state by state against the batch handler on S3.

A small interpreter for the states the ASL file uses (Task -> lambda:invoke, Choice, Map with
an S3 ItemReader, Succeed, Fail) proves the file and the handler agree on every payload, and
that its output is a single run's output.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from functions.batch.handler import dispatch
from functions.batch.service import BatchService
from functions.runtime.batch.layout import run_id
from functions.runtime.errors import StoreError
from functions.runtime.s3store import S3Store, make_s3_client
from infra.cli.main import main
from tests.batch_support import features_csv, publish_classifier, read_csv, service, sqs_for
from tests.sklearn_models import region_frame, region_pipeline

ROOT = Path(__file__).resolve().parents[2]
ASL = ROOT / "infra" / "statemachines" / "batch.asl.json"


def path_get(document: Any, path: str) -> Any:
    value = document
    for part in [p for p in path.removeprefix("$").split(".") if p]:
        value = value[part]
    return value


def resolve(template: Any, document: Any) -> Any:
    if not isinstance(template, dict):
        return template
    out = {}
    for key, value in template.items():
        if key.endswith(".$"):
            out[key[:-2]] = path_get(document, value)
        else:
            out[key] = resolve(value, document)
    return out


def error_response(exc: BaseException) -> str:
    """The Catch's Cause for a function that raised `exc`: Lambda's Python runtime's error
    response, as JSON text (what Step Functions hands over, stack trace and all)."""
    return json.dumps(
        {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "requestId": "8f0c6f1e-2b1f-4c4e-9a53-6c2d1d7b9e10",
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
    )


class Walker:
    """Runs the state machine's states, invoking the batch function in-process."""

    def __init__(self, batch: BatchService) -> None:
        self.batch = batch
        self.invocations: list[str] = []

    def run(self, machine: dict[str, Any], document: Any) -> tuple[str, Any]:
        name = machine["StartAt"]
        while True:
            state = machine["States"][name]
            kind = state["Type"]
            if kind in ("Succeed", "Fail"):
                return kind, document
            if kind == "Choice":
                choice = next(
                    (
                        c
                        for c in state["Choices"]
                        if path_get(document, c["Variable"]) == c["StringEquals"]
                    ),
                    None,
                )
                name = choice["Next"] if choice else state["Default"]
                continue
            try:
                result = self.task(state, document) if kind == "Task" else self.map(state, document)
            except Exception as exc:  # past its retries: the state's Catch, if it has one
                catch = next(
                    (c for c in state.get("Catch", []) if "States.ALL" in c["ErrorEquals"]), None
                )
                if catch is None:
                    raise
                error = {"Error": type(exc).__name__, "Cause": error_response(exc)}
                document = {**document, catch["ResultPath"].removeprefix("$."): error}
                name = catch["Next"]
                continue
            document = self.place(state, document, result)
            if state.get("End"):
                return "Succeed", document
            name = state["Next"]

    def task(self, state: dict[str, Any], document: Any) -> Any:
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        parameters = resolve(state["Parameters"], document)
        assert parameters["FunctionName"] == "${BatchFunctionArn}"
        payload = json.loads(json.dumps(parameters["Payload"]))  # as JSON crosses the wire
        self.invocations.append(payload["aiaas_batch"])
        result = {"Payload": dispatch(self.batch, payload), "StatusCode": 200}
        if "ResultSelector" in state:
            result = resolve(state["ResultSelector"], result)
        return result

    def map(self, state: dict[str, Any], document: Any) -> list[Any]:
        reader = state["ItemReader"]
        assert reader["Resource"] == "arn:aws:states:::s3:getObject"
        where = resolve(reader["Parameters"], document)
        body = make_s3_client().get_object(Bucket=where["Bucket"], Key=where["Key"])["Body"].read()
        processor = state["ItemProcessor"]
        assert processor["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
        return [self.run(processor, item)[1] for item in json.loads(body)]

    @staticmethod
    def place(state: dict[str, Any], document: Any, result: Any) -> Any:
        if "ResultPath" in state and state["ResultPath"] is None:
            return document
        return path_get(result, state.get("OutputPath", "$"))


@pytest.fixture
def s3(s3_store: S3Store, tmp_path: Path) -> S3Store:
    publish_classifier(s3_store, tmp_path)
    return s3_store


def execution_input(s3: S3Store, key: str, shards: int) -> dict[str, Any]:
    info = s3.head(key)
    return {"bucket": s3.bucket, "key": f"{s3.prefix}/{key}", "etag": info.etag, "shards": shards}


def test_state_machine_output_equals_a_single_run(s3, tmp_path):
    text = features_csv(np.random.default_rng(5).normal(size=(40, 4))).replace("r6,", "r6,x", 1)
    s3.put_bytes("batch/iris/input/one.csv", text.encode())
    s3.put_bytes("batch/iris/input/big.csv", text.encode())
    batch = service(s3, tmp_path, chunk_rows=4)
    dispatch(batch, sqs_for(s3, "batch/iris/input/one.csv"))
    walker = Walker(batch)
    machine = json.loads(ASL.read_text())
    outcome, summary = walker.run(machine, execution_input(s3, "batch/iris/input/big.csv", 4))
    assert outcome == "Succeed"
    assert walker.invocations == ["plan", "shard", "shard", "shard", "shard", "merge"]
    assert (summary["status"], summary["shards"], summary["failed_rows"]) == ("succeeded", 4, 1)
    for suffix in ("", ".errors.jsonl"):
        assert s3.get_bytes(f"batch/iris/output/big.csv{suffix}") == s3.get_bytes(
            f"batch/iris/output/one.csv{suffix}"
        )
    assert len(read_csv(s3, "batch/iris/output/big.csv")) == 39
    # A re-delivered execution finds the finished run and stops at the Choice.
    walker.invocations.clear()
    outcome, again = walker.run(machine, execution_input(s3, "batch/iris/input/big.csv", 4))
    assert (outcome, again["status"], walker.invocations) == ("Succeed", "skipped", ["plan"])


def test_failed_shards_are_recorded_in_the_summary(s3, tmp_path):
    s3.put_bytes("batch/iris/input/f.csv", features_csv(np.ones((5, 4))).encode())
    info = s3.head("batch/iris/input/f.csv")
    batch = service(s3, tmp_path)
    plan = dispatch(
        batch, {"aiaas_batch": "plan", **execution_input(s3, "batch/iris/input/f.csv", 2)}
    )
    error = {"Error": "ModelUnavailable", "Cause": "store unreachable"}
    summary = dispatch(batch, {"aiaas_batch": "fail", "plan": plan, "error": error})
    assert summary["status"] == "failed"
    assert summary["error"] == "sharded run failed: ModelUnavailable: store unreachable"
    assert summary["run_id"] == run_id(s3.bucket, "batch/iris/input/f.csv", info.etag)


def test_template_wires_the_state_machine_and_the_queue():
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    resources = template["Resources"]
    machine = resources["BatchStateMachine"]["Properties"]
    assert (ROOT / machine["DefinitionUri"]).resolve() == ASL
    assert set(machine["DefinitionSubstitutions"]) == {"BatchFunctionArn"}
    function = resources["BatchFunction"]["Properties"]
    assert function["Handler"] == "functions.batch.handler.handler"
    assert function["Events"]["BatchInput"]["Properties"]["FunctionResponseTypes"] == [
        "ReportBatchItemFailures"
    ]
    assert resources["BatchQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    notification = resources["ArtifactsBucket"]["Properties"]["NotificationConfiguration"]
    assert notification == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    rule = resources["BatchInputRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["object"]["key"] == [
        {"wildcard": "registry/batch/*/input/*"}
    ]
    assert [t["Id"] for t in rule["Targets"]] == ["batch-queue"]


def test_the_definition_uses_the_shared_task_and_status_names() -> None:
    """The ASL's task actions and status checks are BatchTask / RunStatus values, so renaming
    one in Python without the definition (or the reverse) fails here, not in a deployed run."""
    from functions.runtime.batch.status import BatchTask, RunStatus

    tasks: list[str] = []
    statuses: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("aiaas_batch"), str):
                tasks.append(node["aiaas_batch"])
            if node.get("Variable") == "$.status":
                statuses.append(node["StringEquals"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(ASL.read_text()))
    assert tasks and set(tasks) <= {t.value for t in BatchTask}
    assert statuses == [RunStatus.PLANNED.value]
    # The plan hands shards and the merge their actions; the definition invokes the rest.
    assert set(tasks) | {BatchTask.SHARD, BatchTask.MERGE} == set(BatchTask)


def test_a_plan_that_fails_past_its_retries_still_writes_a_failed_summary(
    s3, tmp_path, monkeypatch
):
    """Plan had no Catch: a store down past the retries (or a Lambda timeout reading a huge CSV)
    failed the execution with no summary, so the input read as pending for ever."""
    s3.put_bytes("batch/iris/input/p.csv", features_csv(np.ones((5, 4))).encode())
    info = s3.head("batch/iris/input/p.csv")

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the store did not answer")

    monkeypatch.setattr("functions.batch.service.plan_run", down)
    walker = Walker(service(s3, tmp_path))
    machine = json.loads(ASL.read_text())
    outcome, summary = walker.run(machine, execution_input(s3, "batch/iris/input/p.csv", 2))
    assert (outcome, walker.invocations) == ("Fail", ["plan", "fail"])
    written = json.loads(s3.get_bytes("batch/iris/output/p.csv.summary.json"))
    assert written == summary
    assert (written["status"], written["run_id"], written["etag"]) == (
        "failed",
        run_id(s3.bucket, "batch/iris/input/p.csv", info.etag),
        info.etag,
    )
    assert written["error"] == (
        "sharded run failed while planning: StoreError: the store did not answer"
    )
    assert (written["shards"], written["rows"], written["rows_per_second"]) == (0, 0, None)
    assert written["timings"]["total_s"] >= 0 and written["chunk_rows"] > 0


def test_a_merge_that_fails_names_its_error_not_the_lambda_error_response(
    s3, tmp_path, monkeypatch
):
    """Step Functions hands the Catch the function's error response as JSON text (errorMessage,
    errorType, requestId, stackTrace): the summary held all of it, a stack trace where the
    reason should be."""
    s3.put_bytes("batch/iris/input/m.csv", features_csv(np.ones((5, 4))).encode())

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the store did not answer")

    monkeypatch.setattr("functions.batch.service.merge_run", down)
    walker = Walker(service(s3, tmp_path))
    machine = json.loads(ASL.read_text())
    outcome, summary = walker.run(machine, execution_input(s3, "batch/iris/input/m.csv", 2))
    assert (outcome, walker.invocations) == ("Fail", ["plan", "shard", "shard", "merge", "fail"])
    written = json.loads(s3.get_bytes("batch/iris/output/m.csv.summary.json"))
    assert written["error"] == "sharded run failed: StoreError: the store did not answer"
    assert "stackTrace" not in summary["error"]


def test_a_first_shard_is_not_cut_inside_the_first_chunk(s3_store, tmp_path, monkeypatch):
    """12 rows the model refuses (a category its OneHotEncoder never saw), then 12 it scores,
    the default chunk size: one run scores 12 of 24. The plan cut 2 shards at half the bytes,
    so the first shard held the 12 refused rows alone, judged the model broken on them and the
    execution failed the run. Its first shard now ends no earlier than the first chunk."""
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "wine.onnx").write_bytes(region_pipeline()[1])
    args = ["--store", s3_store.uri, "publish", str(tmp_path / "wine.onnx"), "--name", "wine"]
    assert main(args) == 0
    frame = region_frame(24)
    frame.loc[:11, "region"] = "west"
    for name in ("one.csv", "big.csv"):
        s3_store.put_bytes(f"batch/wine/input/{name}", frame.to_csv(index=False).encode())
    batch = service(s3_store, tmp_path)
    dispatch(batch, sqs_for(s3_store, "batch/wine/input/one.csv"))
    one = json.loads(s3_store.get_bytes("batch/wine/output/one.csv.summary.json"))
    assert (one["status"], one["scored_rows"], one["failed_rows"]) == ("succeeded", 12, 12)

    walker = Walker(batch)
    machine = json.loads(ASL.read_text())
    outcome, summary = walker.run(machine, execution_input(s3_store, "batch/wine/input/big.csv", 2))

    assert (outcome, walker.invocations) == ("Succeed", ["plan", "shard", "shard", "merge"])
    per_run = {"run_id", "input", "etag", "output", "errors", "started_at", "finished_at"}
    per_run |= {"timings", "rows_per_second", "shards"}
    assert {k: v for k, v in summary.items() if k not in per_run} == {
        k: v for k, v in one.items() if k not in per_run
    }
    assert summary["shards"] == 2
    for suffix in ("", ".errors.jsonl"):  # the first shard holds the whole chunk: same runs
        assert s3_store.get_bytes(f"batch/wine/output/big.csv{suffix}") == s3_store.get_bytes(
            f"batch/wine/output/one.csv{suffix}"
        )
