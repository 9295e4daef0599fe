"""The same bytes again on S3 (the same ETag, so the same run id): the finished run stands.

A re-upload after a promote, or after fixing what failed a run, was skipped at INFO by the event
path and answered `202 pending` by the control plane for a run that never came. A duplicate
delivery must still score nothing; what changes is that the caller is told, with the fix."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore
from tests.functions.test_control_batch import JOB, ROWS, score_in_the_cloud_way, wait_for
from tests.functions.test_control_models import MODEL, publish_versions

KEY = f"batch/{MODEL}/input/day/rows.csv"


def test_same_bytes_again_are_refused_with_the_run_that_stands(
    s3_store: S3Store, classifier_onnx: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = publish_versions(s3_store, classifier_onnx, "1", "2")
    registry.set_alias(MODEL, "production", "1", actor="ci")
    client = TestClient(create_app(s3_store))
    assert client.put(f"{JOB}/day/rows.csv", content=ROWS.encode()).status_code == 202
    score_in_the_cloud_way(s3_store, KEY)
    done = wait_for(client, "day/rows.csv")
    assert (done["status"], done["version"]) == ("succeeded", "1")

    again = client.put(f"{JOB}/day/rows.csv", content=ROWS.encode())
    assert again.status_code == 409, again.text
    said = again.text
    assert f"already scored by run {done['run_id']} with {MODEL}:1" in said
    assert f"e.g. batch/{MODEL}/input/day/rows-2.csv" in said

    with caplog.at_level(logging.INFO, logger="aiaas.batch"):
        score_in_the_cloud_way(s3_store, KEY)  # a duplicate delivery: nothing to say but INFO
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("already scored" in r.getMessage() for r in caplog.records)

    registry.set_alias(MODEL, "production", "2", actor="ci")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="aiaas.batch"):
        score_in_the_cloud_way(s3_store, KEY)  # re-uploaded after the promote: still version 1
    (warned,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"{MODEL} is now {MODEL}:2, and that run's output is {MODEL}:1's" in warned
    assert f"e.g. batch/{MODEL}/input/day/rows-v2.csv" in warned
    promoted = client.put(f"{JOB}/day/rows.csv", content=ROWS.encode())
    assert promoted.status_code == 409 and f"{MODEL} is now {MODEL}:2" in promoted.text
    assert wait_for(client, "day/rows.csv")["version"] == "1"


def test_a_directory_store_scores_each_upload(local_store: LocalStore, classifier_onnx) -> None:
    """There the ETag is mtime and size: every upload is a new version, scored again."""
    publish_versions(local_store, classifier_onnx, "1")
    client = TestClient(create_app(local_store))
    assert client.put(f"{JOB}/a.csv", content=ROWS.encode()).status_code == 202
    first = wait_for(client, "a.csv")
    time.sleep(0.01)  # the directory store's ETag is mtime-based
    again = client.put(f"{JOB}/a.csv", content=ROWS.encode())
    assert again.status_code == 202 and again.json()["etag"] != first["etag"]
