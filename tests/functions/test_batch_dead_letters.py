"""A job whose queue message is dead-lettered reads `failed` with the reason (hunt_batch2 2).

A run that fails for a reason a retry may cure (the store failing, a model file that fails its
check) returns its SQS message to the queue; after the queue's maxReceiveCount (5) deliveries
the message goes to the dead-letter queue. No delivery recorded the failure, so the control
plane's `GET /control/batch/<model>/jobs/<file>` answered `pending` for good and `aiaas batch
--deployed --wait` waited out its timeout. Now the last delivery publishes a failed summary
saying why and what to do, marked `dead_lettered`, which holds no run as finished: once the
cause is fixed, a redrive of the message scores the input.

Through both Lambda handlers as Lambda builds them, over S3 on moto's server, with the queue's
message shaped as events/batch_eventbridge_sqs.json (EventBridge "Object Created" in SQS) and a
second message in the batch whose object is gone (it succeeds: `batchItemFailures` names only
the failing one).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import numpy as np
import orjson
import pytest
import yaml

from functions.batch.dispatch import MAX_RECEIVES
from functions.runtime.s3store import S3Store
from infra.cli import batch_wait
from infra.cli.main import main
from infra.local.functions import load_handler
from infra.local.gateway import GatewayRequest, build_event
from tests.batch_support import features_csv, publish_classifier

ROOT = Path(__file__).resolve().parents[2]
NAME = "day 1.csv"
MODEL_FILE = "models/iris/versions/1/model.onnx"


def message(
    store: S3Store, key: str, receives: int, etag: str = "", size: int = 0
) -> dict[str, Any]:
    """The golden SQS record with its EventBridge body naming `key` (URL-encoded, as S3 does)."""
    golden = json.loads((ROOT / "events" / "batch_eventbridge_sqs.json").read_text())
    record = golden["Records"][0]
    body = json.loads(record["body"])
    body["resources"] = [f"arn:aws:s3:::{store.bucket}"]
    body["detail"]["bucket"]["name"] = store.bucket
    found = body["detail"]["object"]
    found["key"] = quote_plus(f"registry/{key}", safe="/")
    found["etag"], found["size"] = etag, size
    record["body"] = json.dumps(body)
    record["messageId"] = f"message-for-{key}"
    record["attributes"]["ApproximateReceiveCount"] = str(receives)
    return record  # type: ignore[no-any-return]


@pytest.fixture
def deployed(s3_store: S3Store, tmp_path: Path) -> tuple[Any, Any, S3Store]:
    """The batch and control handlers on a store whose model file fails its check."""
    publish_classifier(s3_store, tmp_path)
    s3_store.put_bytes(f"batch/iris/input/{NAME}", features_csv(np.ones((4, 4))).encode())
    env = {"AIAAS_STORE": f"s3://{s3_store.bucket}/registry"}
    batch = load_handler(
        "functions.batch.handler.handler", {**env, "AIAAS_CACHE_DIR": str(tmp_path / "cache")}
    )
    control = load_handler("functions.control.handler.handler", env)
    return batch, control, s3_store


def job_call(control: Any, method: str = "GET", body: bytes = b"") -> tuple[int, dict[str, Any]]:
    path = f"/control/batch/iris/jobs/{quote(NAME)}"
    request = GatewayRequest(method, path, "", [("content-type", "text/csv")], body)
    response = control(build_event(request, "ANY", "/control/{proxy+}", {"proxy": path[9:]}), None)
    return response["statusCode"], orjson.loads(response["body"])


def job_status(control: Any) -> dict[str, Any]:
    code, status = job_call(control)
    assert code == 200, status
    return status


def deliver(batch: Any, store: S3Store, receives: int) -> dict[str, Any]:
    info = store.head(f"batch/iris/input/{NAME}")
    records = [
        message(store, f"batch/iris/input/{NAME}", receives, info.etag, info.size),
        message(store, "batch/iris/input/gone.csv", receives),  # ignored: it succeeds
    ]
    return batch({"Records": records}, None)  # type: ignore[no-any-return]


def test_the_last_delivery_records_the_failure_and_a_redrive_scores_the_input(
    deployed: tuple[Any, Any, S3Store],
) -> None:
    batch, control, store = deployed
    good = store.get_bytes(MODEL_FILE)
    store.put_bytes(MODEL_FILE, good[:20] + b"X" + good[21:])  # the integrity check fails
    failed = {"batchItemFailures": [{"itemIdentifier": f"message-for-batch/iris/input/{NAME}"}]}
    for receives in range(1, MAX_RECEIVES):  # the queue delivers it again: nothing recorded
        assert deliver(batch, store, receives) == failed
        assert job_status(control)["status"] == "pending"
    assert deliver(batch, store, MAX_RECEIVES) == failed  # the last: the DLQ is next
    status = job_status(control)
    assert (status["status"], status["dead_lettered"], status["rows"]) == ("failed", True, 0)
    assert status["error"].startswith(
        f"the run failed on each of the {MAX_RECEIVES} deliveries of its queue message, the "
        "last with: iris:1: models/iris/versions/1/model.onnx: sha256 "
    )
    assert status["error"].endswith(
        "refusing to use it; the message goes to the batch queue's dead-letter queue: once "
        "the cause is fixed, redrive it from there (or upload the file again)"
    )
    # The same bytes put again: their run is not done (it was a 409, "already scored").
    time.sleep(1.1)  # S3 and the summary tell whole seconds: the upload is a later one
    code, placed = job_call(control, "PUT", store.get_bytes(f"batch/iris/input/{NAME}"))
    assert (code, placed["status"]) == (202, "pending"), placed
    # ... and the job reads pending until its run ends, not the earlier message's failure
    # (a client polling for the end stopped there: review_rev3 4)
    assert job_status(control)["status"] == "pending"
    store.put_bytes(MODEL_FILE, good)  # fixed; the redriven message is delivered afresh
    assert deliver(batch, store, 1) == {"batchItemFailures": []}
    status = job_status(control)
    assert (status["status"], status["scored_rows"]) == ("succeeded", 4)
    assert "dead_lettered" not in status
    assert deliver(batch, store, 1) == {"batchItemFailures": []}  # now a re-delivery: skipped
    assert job_status(control)["run_id"] == status["run_id"]


def test_the_last_receive_is_the_queue_s_max_receive_count() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506
    queue = template["Resources"]["BatchQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVES


def test_a_last_delivery_for_another_bucket_records_nothing(
    deployed: tuple[Any, Any, S3Store], caplog: pytest.LogCaptureFixture
) -> None:
    """No input of this store to fail: the message goes to the DLQ with its reason logged."""
    batch, _, store = deployed
    record = message(store, f"batch/iris/input/{NAME}", MAX_RECEIVES)
    body = json.loads(record["body"])
    body["detail"]["bucket"]["name"] = "someone-elses-bucket"
    record["body"] = json.dumps(body)
    gone = message(store, "batch/iris/input/gone.csv", MAX_RECEIVES)
    with caplog.at_level(logging.INFO, logger="aiaas.batch"):
        answer = batch({"Records": [record, gone]}, None)
    assert answer == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    said = [r.getMessage() for r in caplog.records if r.name == "aiaas.batch"]
    assert any("goes to the dead-letter queue: event for bucket" in line for line in said), said
    assert not any("could not record" in line for line in said), said
    assert not store.exists(f"batch/iris/output/{NAME}.summary.json")


@pytest.mark.parametrize("suffix", [".summary.json", ".errors.jsonl"])
def test_a_last_delivery_leaves_the_report_of_another_input_its_name_maps_to(
    deployed: tuple[Any, Any, S3Store], tmp_path: Path, suffix: str
) -> None:
    """An input named after another's report (`day 1.csv.summary.json`, say the output folder
    synced back into the input one) scores into that report's key: its run fails without
    touching it (open_run), and so must its dead-lettered failure (review_rev3 2)."""
    batch, control, store = deployed
    first = load_handler(
        "functions.batch.handler.handler",
        {"AIAAS_STORE": f"s3://{store.bucket}/registry", "AIAAS_CACHE_DIR": str(tmp_path / "c1")},
    )
    info = store.head(f"batch/iris/input/{NAME}")
    record = message(store, f"batch/iris/input/{NAME}", 1, info.etag, info.size)
    scored = first({"Records": [record]}, None)
    assert scored == {"batchItemFailures": []}
    store.put_bytes(f"batch/iris/output/{NAME}.errors.jsonl", b'{"line": 9}\n')  # as if it had
    report = f"batch/iris/output/{NAME}{suffix}"
    kept = store.get_bytes(report)
    synced = f"batch/iris/input/{NAME}{suffix}"
    store.put_bytes(synced, kept)
    good = store.get_bytes(MODEL_FILE)
    store.put_bytes(MODEL_FILE, good[:20] + b"X" + good[21:])  # fails before the name is read
    last = message(store, synced, MAX_RECEIVES)
    gone = message(store, "batch/iris/input/gone.csv", 1)  # not all failed: no raise
    assert batch({"Records": [last, gone]}, None) == {
        "batchItemFailures": [{"itemIdentifier": last["messageId"]}]
    }
    assert store.get_bytes(report) == kept  # day 1.csv's report, still there
    assert json.loads(store.get_bytes(f"{synced.replace('/input/', '/output/')}.summary.json"))[
        "dead_lettered"
    ]
    assert job_status(control)["status"] == "succeeded"


def test_the_same_bytes_uploaded_again_are_waited_for_not_told_the_earlier_failure(
    deployed: tuple[Any, Any, S3Store],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`aiaas batch --deployed --wait` of the bytes whose message was dead-lettered, once the
    cause is fixed (what the failure says to do): on S3 the same bytes are the same run id,
    and the wait reported the earlier failure at once (exit 1) while the stack scored them
    (review_rev3 3)."""
    batch, _, store = deployed
    good = store.get_bytes(MODEL_FILE)
    store.put_bytes(MODEL_FILE, good[:20] + b"X" + good[21:])
    deliver(batch, store, MAX_RECEIVES)
    assert json.loads(store.get_bytes(f"batch/iris/output/{NAME}.summary.json"))["dead_lettered"]
    store.put_bytes(MODEL_FILE, good)
    data = tmp_path / "rows.csv"
    data.write_bytes(store.get_bytes(f"batch/iris/input/{NAME}"))
    delivered: list[dict[str, Any]] = []
    # The stack's event for the upload, delivered where the wait pauses.
    monkeypatch.setattr(
        batch_wait, "pause", lambda seconds: delivered.append(deliver(batch, store, 1))
    )
    capsys.readouterr()
    uri = f"s3://{store.bucket}/registry"
    args = ["batch", "iris", str(data), "--name", NAME, "--deployed", "--wait", "--json"]
    code = main(["--store", uri, *args, "--timeout", "60", "--no-progress"])
    out = capsys.readouterr().out
    assert delivered == [{"batchItemFailures": []}], out
    assert code == 0, out
    summary = json.loads(out)
    assert (summary["status"], summary["scored_rows"]) == ("succeeded", 4)
