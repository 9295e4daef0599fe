"""Control plane, batch side: submit jobs (upload or copy from uploads/) and follow them.

On S3 (moto's server) submitting only places the input, as the cloud's S3 -> SQS notification
does the scoring; the test then runs the real batch function on the notification and the
status turns into the run's summary. On a directory store the control plane scores the job
itself on a thread.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from functions.batch.events import ObjectCreated, store_location
from functions.batch.service import BatchService
from functions.control.app import create_app
from functions.runtime.batch.settings import BatchSettings
from functions.runtime.pool import ModelPool
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests.functions.test_control_models import MODEL, client_once, publish_versions

ROWS = "id,x_0,x_1,x_2,x_3\na,1,2,3,4\nb,0.5,0,-1,2\nc,oops,1,1,1\n"
JOB = f"/control/batch/{MODEL}/jobs"


@pytest.fixture
def client(store: ObjectStore, classifier_onnx: Path) -> TestClient:
    publish_versions(store, classifier_onnx, "1").set_alias(MODEL, "production", "1", actor="ci")
    return TestClient(create_app(store))


@pytest.fixture(scope="module", params=["local", "s3"])
def refusing(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> TestClient:
    """`client`, made once per store for the 26 refused job requests (a publish a test)."""
    return client_once(request, tmp_path_factory, versions="1")


def score_in_the_cloud_way(store: ObjectStore, input_key: str) -> None:
    """What S3 -> SQS -> the batch function does for a new input (directory stores do it inline)."""
    if isinstance(store, LocalStore):
        return
    info = store.head(input_key)
    bucket, prefix = store_location(store)
    service = BatchService(store, ModelPool(Registry(store)), BatchSettings())
    service.on_object(ObjectCreated(bucket, prefix + input_key, info.etag, info.size))


def wait_for(client: TestClient, file: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"{JOB}/{file}").json()
        if body["status"] != "pending":
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {file} still pending after {timeout} s")


def test_upload_then_follow_a_job_to_its_summary(client: TestClient, store: ObjectStore) -> None:
    response = client.put(f"{JOB}/day1/scores.csv", content=ROWS.encode())
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "pending"
    assert {k: job[k] for k in ("model", "file", "input", "output", "errors", "summary")} == {
        "model": MODEL,
        "file": "day1/scores.csv",
        "input": "batch/iris/input/day1/scores.csv",
        "output": "batch/iris/output/day1/scores.csv",
        "errors": "batch/iris/output/day1/scores.csv.errors.jsonl",
        "summary": "batch/iris/output/day1/scores.csv.summary.json",
    }
    assert store.get_bytes(job["input"]) == ROWS.encode()
    score_in_the_cloud_way(store, job["input"])
    done = wait_for(client, "day1/scores.csv")
    assert done["status"] == "succeeded"
    assert (done["rows"], done["scored_rows"], done["failed_rows"]) == (3, 2, 1)
    assert (done["version"], done["etag"]) == ("1", store.head(job["input"]).etag)
    scored = store.get_bytes(done["output"]).decode().splitlines()
    assert scored[0].startswith("id,x_0,x_1,x_2,x_3,") and len(scored) == 3
    errors = [json.loads(line) for line in store.get_bytes(done["errors"]).splitlines()]
    assert [e["line"] for e in errors] == [4]
    listed = client.get(JOB).json()["jobs"]
    assert [(j["file"], j["status"]) for j in listed] == [("day1/scores.csv", "succeeded")]


def test_a_replaced_input_reads_pending_until_its_own_run(
    client: TestClient, store: ObjectStore
) -> None:
    client.put(f"{JOB}/a.csv", content=ROWS.encode())
    score_in_the_cloud_way(store, "batch/iris/input/a.csv")
    assert wait_for(client, "a.csv")["rows"] == 3
    if isinstance(store, LocalStore):
        time.sleep(0.01)  # the directory store's ETag is mtime-based
    replaced = client.put(f"{JOB}/a.csv", content=ROWS.encode() + b"d,1,1,1,1\n")
    assert replaced.json()["status"] == "pending"
    score_in_the_cloud_way(store, "batch/iris/input/a.csv")
    assert wait_for(client, "a.csv")["rows"] == 4


def test_submit_a_file_already_under_uploads(client: TestClient, store: ObjectStore) -> None:
    store.put_bytes("uploads/big.jsonl", b'{"x": [1, 2, 3, 4]}\n{"x": [0, 0, 0, 1]}\n')
    response = client.post(JOB, json={"source": "uploads/big.jsonl", "file": "nightly.jsonl"})
    assert response.status_code == 202
    assert response.json()["input"] == "batch/iris/input/nightly.jsonl"
    assert store.get_bytes("batch/iris/input/nightly.jsonl") == store.get_bytes("uploads/big.jsonl")
    score_in_the_cloud_way(store, "batch/iris/input/nightly.jsonl")
    done = wait_for(client, "nightly.jsonl")
    assert (done["status"], done["scored_rows"]) == ("succeeded", 2)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        (
            "PUT",
            f"{JOB}/data.parquet",
            b"x",
            400,
            "batch/iris/input/data.parquet: unsupported input format '.parquet'; batch reads .csv, .jsonl, .ndjson, .npy, .csv.gz, .jsonl.gz, .ndjson.gz, and renaming does not convert a Parquet file: write it as CSV and upload that (pandas: pd.read_parquet('data.parquet').to_csv('data.csv', index=False))",
        ),
        (
            "PUT",
            f"{JOB}/a//b.csv",
            b"x",
            400,
            "invalid job file name 'a//b.csv': use '/'-separated parts of 1-255 characters, none '.' or '..', no control characters, 1024 characters in all, none starting with '.tmp-'",
        ),
        (
            "PUT",
            f"{JOB}/a%00b.csv",
            b"x",
            400,
            "invalid job file name 'a\\x00b.csv': use '/'-separated parts of 1-255 characters, none '.' or '..', no control characters, 1024 characters in all, none starting with '.tmp-'",
        ),
        (
            "PUT",
            f"{JOB}/{'a' * 296}.csv",
            b"x",
            400,
            f"invalid job file name '{'a' * 60}'... (300 characters): use '/'-separated parts of 1-255 characters, none '.' or '..', no control characters, 1024 characters in all, none starting with '.tmp-'",
        ),
        (
            "PUT",
            f"{JOB}/.tmp-hidden.csv",
            b"x",
            400,
            "invalid job file name '.tmp-hidden.csv': use '/'-separated parts of 1-255 characters, none '.' or '..', no control characters, 1024 characters in all, none starting with '.tmp-'",
        ),
        (
            "PUT",
            f"{JOB}/empty.csv",
            b"",
            400,
            "the request body is empty: send the file's bytes as the body",
        ),
        ("PUT", "/control/batch/nope/jobs/a.csv", b"x", 404, "model 'nope' not found"),
        (
            "PUT",
            "/control/batch/No!/jobs/a.csv",
            b"x",
            400,
            "invalid model name 'No!': use 1-64 characters of a-z, 0-9, '-', '_', '.', starting and ending with a letter or digit",
        ),
        ("GET", f"{JOB}/never.csv", None, 404, "no batch job 'never.csv' for model 'iris'"),
        ("GET", "/control/batch/nope/jobs", None, 404, "model 'nope' not found"),
        (
            "POST",
            JOB,
            {"source": "models/iris/versions/1/model.onnx"},
            400,
            "source 'models/iris/versions/1/model.onnx' must be a store key under 'uploads/', e.g. 'uploads/data.csv'",
        ),
        (
            "POST",
            JOB,
            {"source": "uploads/missing.csv"},
            404,
            "no object 'uploads/missing.csv' in the store; upload it there first",
        ),
        ("POST", JOB, {"file": "a.csv"}, 422, "invalid request: source: Field required"),
    ],
)
def test_job_errors_name_what_to_fix(
    refusing: TestClient, method: str, path: str, body: Any, status: int, error: str
) -> None:
    if isinstance(body, bytes):
        response = refusing.request(method, path, content=body)
    else:
        response = refusing.request(method, path, json=body)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_every_key_the_event_path_scores_has_a_job_status(
    s3_store: S3Store, classifier_onnx: Path
) -> None:
    """An input dropped straight into the bucket under a name with spaces (and other
    characters S3 keys allow) is scored from its event: its job status used to be a 400."""
    publish_versions(s3_store, classifier_onnx, "1")
    client = TestClient(create_app(s3_store))
    file = "day2/nightly 2026-12-02 (v2)+#ü,=&.csv"
    s3_store.put_bytes(f"batch/{MODEL}/input/{file}", ROWS.encode())
    score_in_the_cloud_way(s3_store, f"batch/{MODEL}/input/{file}")
    done = client.get(f"{JOB}/{quote(file)}")
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["file"]) == ("succeeded", file)
    assert [j["file"] for j in client.get(JOB, params={"after": "day1"}).json()["jobs"]] == [file]
    for refused in ("day2%2F..%2Fx.csv", "day2/a%01.csv", f"{'a' * 256}.csv"):
        response = client.get(f"{JOB}/{refused}")
        assert response.status_code == 400
        assert response.json()["error"].startswith("invalid job file name ")


def test_an_upload_over_the_limit_is_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("functions.control.batch_api.MAX_UPLOAD_BYTES", 16)
    response = client.put(f"{JOB}/a.csv", content=ROWS.encode())
    assert response.status_code == 413
    assert response.json() == {
        "error": f"the body is {len(ROWS)} bytes, over the 16 byte upload limit; put the file "
        'under uploads/ in the bucket and POST {"source": "uploads/..."} instead'
    }


def test_s3_submit_copies_server_side(s3_store: S3Store, classifier_onnx: Path) -> None:
    publish_versions(s3_store, classifier_onnx, "1")
    client = TestClient(create_app(s3_store))
    s3_store.put_bytes("uploads/x.csv", ROWS.encode())
    assert client.post(JOB, json={"source": "uploads/x.csv"}).status_code == 202
    head = s3_store.client.head_object(
        Bucket=s3_store.bucket, Key="registry/batch/iris/input/x.csv"
    )
    assert head["ContentLength"] == len(ROWS)


def test_a_job_s_answers_are_what_the_document_says(client: TestClient) -> None:
    """A client generated from /openapi.json read every job answer as `{}` (any value): the
    stall fields' serializer, annotated `-> Any`, made pydantic document JobStatus as Any
    (journey15 hunt, openapi-schema-validator against `aiaas serve`)."""
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert [name for name, schema in schemas.items() if schema == {}] == []
    job = schemas["JobStatus"]
    assert {"model", "file", "input", "status"} <= set(job["required"])
    assert not {"stalled", "held", "hint"} & set(job["required"])  # only on a stalled job
    answers = {
        "PUT": client.put(f"{JOB}/day1.csv", content=ROWS.encode()),
        "GET": client.get(f"{JOB}/day1.csv"),
        "list": client.get(JOB),
    }
    for how, answer in answers.items():
        schema_of = "JobList" if how == "list" else "JobStatus"
        validator = Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema_of}", "components": document["components"]}
        )
        assert list(validator.iter_errors(answer.json())) == [], (how, answer.json())
        jobs = answer.json()["jobs"] if how == "list" else [answer.json()]
        assert jobs and all(j["file"] == "day1.csv" and "stalled" not in j for j in jobs)
