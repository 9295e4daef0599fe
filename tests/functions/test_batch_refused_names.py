"""Keys S3 takes under input/ with an empty, '.' or '..' part (`day2//x.csv`, `./y.csv`): the
batch function said "not under batch/<model>/input/" at INFO, and the job list left them out,
so such an upload vanished without a trace. Now the true reason, at WARNING, and a listed
`refused` job with it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.batch.events import s3_notification, sqs_event
from functions.batch.handler import dispatch
from functions.control.app import create_app
from functions.runtime.s3store import S3Store, make_s3_client
from tests.batch_support import publish_classifier, service
from tests.functions.test_control_batch import ROWS

ODD = ["day2//x.csv", "./y.csv", "d/../e.csv"]


def test_oddly_named_inputs_are_refused_in_the_log_and_the_job_list(
    s3_store: S3Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish_classifier(s3_store, tmp_path)
    s3 = make_s3_client()
    bodies = []
    for file in [*ODD, "fine.csv", "day2/"]:
        key = f"registry/batch/iris/input/{file}"
        etag = s3.put_object(Bucket=s3_store.bucket, Key=key, Body=ROWS)["ETag"].strip('"')
        bodies.append(json.dumps(s3_notification(s3_store.bucket, key, etag, len(ROWS))))
    with caplog.at_level(logging.INFO, logger="aiaas.batch"):
        event = sqs_event(bodies[: len(ODD)])
        assert dispatch(service(s3_store, tmp_path), event) == {"batchItemFailures": []}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3, warned
    for file, line in zip(ODD, warned, strict=True):
        assert line.startswith(f"ignored s3://{s3_store.bucket}/registry/batch/iris/input/{file}")
        assert "none '.' or '..'" in line and "not under" not in line

    listed = TestClient(create_app(s3_store)).get("/control/batch/iris/jobs").json()["jobs"]
    shown = {job["file"]: job for job in listed}
    assert sorted(shown) == sorted([*ODD, "fine.csv"])  # the folder marker is no job
    assert shown["fine.csv"]["status"] == "pending"
    for file in ODD:
        assert shown[file]["status"] == "refused"
        assert shown[file]["input"] == f"batch/iris/input/{file}"
        assert "none '.' or '..'" in shown[file]["error"]
