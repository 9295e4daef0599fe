"""A deployed job that no run has left a record of, past the time its message can be in flight
(hunt_batch2, left; review_rev4 3): the two queues say what holds it.

An event EventBridge cannot deliver to the batch queue, or a message on whose every delivery
BatchFunction times out, goes to the dead-letter queue without a run ever writing a record: the
job API read `pending` for good and `aiaas batch --deployed --wait` waited out its timeout (up
to a day). Past the queue's visibility timeout x maxReceiveCount (7.5 h) the job said `stalled`
with a hint to redrive the dead-letter queue or upload again, and `--wait` stopped, though a
message that waits unreceived behind a backlog (MaximumConcurrency) does not count toward
maxReceiveCount and may wait 4 days: the re-upload scored its rows twice. Now the queues'
depths decide: messages in the batch queue read `queued` (`stalled: false`, `--wait` waits
on), the dead-letter queue's read `stalled` with the redrive, both empty say the event never
arrived, and queues that cannot be read say so, with no re-upload advised.

Both Lambda handlers as Lambda builds them, over S3 and SQS on moto's server; the clock is moved
on in `stalls.now` (the upload's LastModified is S3's own), nothing else is stood in for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
import yaml

from functions.runtime.batch import stalls
from functions.runtime.batch.layout import run_id
from functions.runtime.s3store import S3Store
from infra.cli import batch_wait
from infra.cli.main import main
from infra.local.functions import load_handler
from tests.batch_support import features_csv, publish_classifier
from tests.functions.test_batch_dead_letters import NAME, deliver, job_call, job_status, message

ROOT = Path(__file__).resolve().parents[2]
ROWS = features_csv(np.ones((4, 4))).encode()
NO_RERUN = ("upload the file again", "upload again")  # its queued message would score it twice


@pytest.fixture
def deployed(s3_store: S3Store, tmp_path: Path) -> tuple[Any, Any, S3Store]:
    publish_classifier(s3_store, tmp_path)
    env = {"AIAAS_STORE": f"s3://{s3_store.bucket}/registry"}
    batch = load_handler(
        "functions.batch.handler.handler", {**env, "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    )
    control = load_handler("functions.control.handler.handler", env)
    return batch, control, s3_store


@pytest.fixture
def queues(s3_store: S3Store, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The stack's two queues on moto's server, named in the environment as template.yaml
    names them to the ControlPlane (and a caller of `--wait` from the stack's outputs)."""
    sqs, stack = boto3.client("sqs"), f"stalled-{uuid.uuid4().hex[:8]}"
    urls = []
    for variable, queue in [
        (stalls.QUEUE_URL_ENV, "batch-input"),
        (stalls.DEAD_LETTER_URL_ENV, "batch-dlq"),
    ]:
        urls.append(sqs.create_queue(QueueName=f"{stack}-{queue}")["QueueUrl"])
        monkeypatch.setenv(variable, urls[-1])
    return urls[0], urls[1]


def put_messages(url: str, count: int, in_flight: int = 0) -> None:
    sqs = boto3.client("sqs")
    for n in range(count):
        sqs.send_message(QueueUrl=url, MessageBody=f"another upload's event {n}")
    if in_flight:  # received by a run that is scoring them: hidden for the visibility timeout
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=in_flight, VisibilityTimeout=5400)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    monkeypatch.setattr(stalls, "now", lambda: time.time() + seconds)


def past_the_limit(
    control: Any, monkeypatch: pytest.MonkeyPatch, *, rerun: bool = False
) -> dict[str, Any]:
    """The job, put now with no event following, 60 s before and after the 7.5 h; its hint
    says to upload again only where no message of it is left (`rerun`)."""
    code, placed = job_call(control, "PUT", ROWS)
    assert (code, placed["status"]) == (202, "pending"), placed
    assert "stalled" not in job_status(control)
    later(monkeypatch, stalls.DEAD_LETTER_AFTER_S - 60)  # the 5th delivery may still be running
    assert "stalled" not in job_status(control)
    later(monkeypatch, stalls.DEAD_LETTER_AFTER_S + 60)
    status = job_status(control)
    assert status["status"] == "pending", status
    assert status["hint"].startswith("no run of this upload has left a record in the 7.5 h ")
    assert any(said in status["hint"] for said in NO_RERUN) == rerun, status["hint"]
    return status


def test_a_job_whose_message_is_in_the_dead_letter_queue_reads_stalled_with_the_redrive(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batch, control, store = deployed
    put_messages(queues[1], 1)  # the batch queue is empty: its message was dead-lettered
    status = past_the_limit(control, monkeypatch)
    assert (status["stalled"], status["held"]) == (True, "dead_letter_queue"), status
    assert (status["queue_depth"], status["dead_letters"]) == (0, 1), status
    for said in ("5400 s x 5 deliveries", "<stack>-batch-dlq", "BatchDeadLettersAlarm", "redrive"):
        assert said in status["hint"], status["hint"]
    # A sharded run's plan is a record: the state machine scores for as long as it takes.
    info = store.head(f"batch/iris/input/{NAME}")
    plan = f"batch/iris/work/{run_id(store.bucket, info.key, info.etag)}/plan.json"
    store.put_bytes(plan, b"[]")
    assert "stalled" not in job_status(control)
    store.delete(plan)
    # The message redriven from the dead-letter queue: scored, stalled no more.
    assert deliver(batch, store, 1) == {"batchItemFailures": []}
    status = job_status(control)
    assert (status["status"], status["scored_rows"]) == ("succeeded", 4)
    assert not {"stalled", "held", "hint", "queue_depth", "dead_letters"} & set(status)


def test_a_job_behind_a_backlog_reads_queued_not_stalled(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, control, _ = deployed
    put_messages(queues[0], 3, in_flight=1)  # a backfill: uploads wait their turn
    put_messages(queues[1], 1)  # an old poison message: not this job's while others wait
    status = past_the_limit(control, monkeypatch)
    assert (status["stalled"], status["held"]) == (False, "batch_queue"), status
    assert (status["queue_depth"], status["dead_letters"]) == (3, 1), status
    assert "holds 2 message(s) waiting and 1 being scored" in status["hint"], status["hint"]
    assert "Nothing to do but wait" in status["hint"]
    assert "redrive" not in status["hint"], status["hint"]


def test_a_job_with_both_queues_empty_says_its_event_never_arrived(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, control, _ = deployed
    status = past_the_limit(control, monkeypatch, rerun=True)
    assert (status["stalled"], status["held"]) == (True, "none"), status
    assert (status["queue_depth"], status["dead_letters"]) == (0, 0), status
    hint = status["hint"]
    assert "neither the batch queue nor the dead-letter queue" in hint, hint
    assert "the upload's event never arrived" in hint, hint
    for said in ("EventBridgeConfiguration", "BatchInputRule", "FailedInvocations"):
        assert said in hint, hint
    assert "redrive" not in hint, hint


@pytest.mark.parametrize("named", [False, True], ids=["no-url", "call-refused"])
def test_queues_that_cannot_be_read_are_said_with_no_re_upload(
    named: bool,
    deployed: tuple[Any, Any, S3Store],
    moto_server: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, control, _ = deployed  # no URL: a stack deployed before the ControlPlane named them
    if named:  # SQS refuses the call (here: no such queue; in AWS also AccessDenied)
        for variable in (stalls.QUEUE_URL_ENV, stalls.DEAD_LETTER_URL_ENV):
            monkeypatch.setenv(variable, f"{moto_server.endpoint}/123456789012/gone-{uuid.uuid4()}")
    status = past_the_limit(control, monkeypatch)
    assert (status["stalled"], status["held"]) == (True, "unknown"), status
    assert "queue_depth" not in status
    said = "AIAAS_BATCH_QUEUE_URL and AIAAS_BATCH_DLQ_URL are not both set"
    if named:
        said = "QueueDoesNotExist: An error occurred (AWS.SimpleQueueService.NonExistentQueue)"
    assert f"the batch queues could not be read ({said}" in status["hint"], status["hint"]
    assert "wait its turn in the batch queue <stack>-batch-input behind a backlog" in status["hint"]


def wait_on(
    store: S3Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arrives: Callable[[int], None]
) -> tuple[int, list[float]]:
    """`aiaas batch --deployed --wait` of ROWS, an hour passing at each poll; `arrives(n)`
    at the n-th."""
    data = tmp_path / "rows.csv"
    data.write_bytes(ROWS)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        assert len(pauses) < 20, "--wait waited on past the queue's life"
        later(monkeypatch, 3600.0 * len(pauses))
        arrives(len(pauses))

    monkeypatch.setattr(batch_wait, "pause", pause)
    uri = f"s3://{store.bucket}/registry"
    args = ["batch", "iris", str(data), "--deployed", "--wait", "--timeout", "86400"]
    return main(["--store", uri, *args, "--no-progress"]), pauses


def test_deployed_wait_stops_on_a_dead_lettered_message_not_at_its_timeout(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_messages(queues[1], 1)
    code, pauses = wait_on(deployed[2], tmp_path, monkeypatch, lambda n: None)
    err = capsys.readouterr().err
    assert code == 1, err
    assert len(pauses) == 8  # 8 h: past the 7.5 h a message can be in flight
    assert "is stalled: no run of this upload has left a record in the 8.0 h" in err, err
    assert "dead-letter queue <stack>-batch-dlq (the stack's output" in err, err
    assert "redrive" in err, err


def test_deployed_wait_stops_on_an_event_that_never_arrived(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, pauses = wait_on(deployed[2], tmp_path, monkeypatch, lambda n: None)
    err = capsys.readouterr().err
    assert (code, len(pauses)) == (1, 8), err
    assert "is stalled: " in err and "the upload's event never arrived" in err, err


@pytest.mark.parametrize("backlog", [True, False], ids=["queued", "queues-unread"])
def test_deployed_wait_waits_on_through_a_backlog_until_its_run_comes(
    backlog: bool,
    deployed: tuple[Any, Any, S3Store],
    s3_store: S3Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    request: pytest.FixtureRequest,
) -> None:
    if backlog:  # the queues named and holding others' messages; else not named: not known
        put_messages(request.getfixturevalue("queues")[0], 5, in_flight=2)
    batch, _, store = deployed
    key = "batch/iris/input/rows.csv"

    def arrives(poll: int) -> None:  # its turn comes 12 h after the upload
        if poll == 12:
            info = store.head(key)
            answer = batch({"Records": [message(store, key, 1, info.etag, info.size)]}, None)
            assert answer == {"batchItemFailures": []}

    code, pauses = wait_on(store, tmp_path, monkeypatch, arrives)
    err = capsys.readouterr().err
    assert (code, len(pauses)) == (0, 12), err
    assert "stalled" not in err, err


def test_deployed_wait_s_timeout_says_what_holds_the_run(
    deployed: tuple[Any, Any, S3Store],
    queues: tuple[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put_messages(queues[0], 2)
    later(monkeypatch, stalls.DEAD_LETTER_AFTER_S + 60)
    data = tmp_path / "rows.csv"
    data.write_bytes(ROWS)
    uri = f"s3://{deployed[2].bucket}/registry"
    args = ["batch", "iris", str(data), "--deployed", "--wait", "--timeout", "0"]
    assert main(["--store", uri, *args, "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "after 0 s: no run of this upload has left a record" in err, err
    assert "holds 2 message(s) waiting and 0 being scored" in err, err


def test_the_queue_s_life_is_the_template_s() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    resources = template["Resources"]
    queue = resources["BatchQueue"]["Properties"]
    assert queue["VisibilityTimeout"] == stalls.VISIBILITY_TIMEOUT_S
    assert queue["RedrivePolicy"]["maxReceiveCount"] == stalls.MAX_RECEIVES
    assert queue["MessageRetentionPeriod"] == stalls.RETENTION_S
    assert resources["BatchFunction"]["Properties"]["Timeout"] == stalls.FUNCTION_TIMEOUT_S
    env = resources["ControlPlane"]["Properties"]["Environment"]["Variables"]
    assert env[stalls.QUEUE_URL_ENV] == "!Ref"  # the constructor keeps the tag alone
