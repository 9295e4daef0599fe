"""Walking a model's job list by `next` over a running `aiaas serve` reaches every job, on a
directory store and on S3 (moto's server on loopback), when a page ends on an input no run
takes: S3 holds `day2//x.csv` and `b\\x01.csv`, a directory `b\\x01.csv`. That name was the
page's `next`, and the same route refused it as `after` with a 400 (its job file name rule),
so the jobs after it could not be reached (control hunt, #3)."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from functions.runtime.registry import Registry
from functions.runtime.s3store import make_s3_client
from functions.runtime.store import open_store
from tests import onnx_factory
from tests.infra.test_serve_capture import ServeUri
from tests.s3server import MotoServer

JOBS = "/control/batch/iris/jobs"
ROWS = b"x_0,x_1,x_2,x_3\n1,2,3,4\n"
# In the order both stores list them (by text); the refused ones with the rule they break.
INPUTS = {
    "directory": ["a.csv", "b\x01.csv", "m.csv", "z.csv"],
    "s3": ["a.csv", "b\x01.csv", "day2//x.csv", "m.csv", "z.csv"],
}
REFUSED = {"b\x01.csv", "day2//x.csv"}


@dataclasses.dataclass
class Served:
    kind: str
    client: httpx.Client
    inputs: Path  # a directory store's input folder


@pytest.fixture(scope="module", params=["directory", "s3"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    work = tmp_path_factory.mktemp(f"job-pages-{request.param}")
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("moto_server")
        bucket = f"aiaas-job-pages-{uuid.uuid4().hex[:8]}"
        make_s3_client().create_bucket(Bucket=bucket)
        uri = f"s3://{bucket}/registry"
        assert os.environ["AWS_ENDPOINT_URL"] == moto.endpoint  # the server's S3 too
    else:
        uri = str(work / "store")
    onnx = onnx_factory.linear_classifier(work / "linear.onnx")
    store = open_store(uri)
    Registry(store).publish(onnx_factory.manifest_for(onnx, "iris", "1"), onnx)
    inputs = work / "store" / "batch" / "iris" / "input"
    for file in INPUTS[request.param]:  # as a user drops them in (S3 takes any of these keys)
        if request.param == "s3":
            key = f"registry/batch/iris/input/{file}"
            make_s3_client().put_object(Bucket=bucket, Key=key, Body=ROWS)
        else:
            inputs.mkdir(parents=True, exist_ok=True)
            (inputs / file).write_bytes(ROWS)
    server = ServeUri(uri, work, {})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base, timeout=30) as client:
            yield Served(request.param, client, inputs)
    finally:
        server.stop()


def walk(client: httpx.Client, limit: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Every page by `next`, as a client does: (the jobs, the cursors passed)."""
    jobs: list[dict[str, Any]] = []
    cursors: list[str] = []
    after: str | None = None
    for _ in range(20):
        query: dict[str, Any] = {"limit": limit} | ({} if after is None else {"after": after})
        answer = client.get(JOBS, params=query)
        assert answer.status_code == 200, (after, answer.text)
        jobs += answer.json()["jobs"]
        after = answer.json()["next"]
        if after is None:
            return jobs, cursors
        cursors.append(after)
    raise AssertionError(f"no last page after 20: {cursors}")


@pytest.mark.parametrize("limit", [1, 2])
def test_every_job_is_reached_by_next_past_a_refused_name(served: Served, limit: int) -> None:
    jobs, cursors = walk(served.client, limit)
    assert [job["file"] for job in jobs] == INPUTS[served.kind]
    for job in jobs:
        refused = job["file"] in REFUSED
        assert (job["status"] == "refused") == refused, job
        if refused:
            assert job["error"].startswith("invalid "), job
            assert "upload it under such a name to score it" in job["error"], job
    assert set(cursors) & REFUSED  # a page did end on one: its `next` was taken


def test_the_documented_after_takes_every_next(served: Served) -> None:
    """The OpenAPI document's `after` for the job list (its pattern refused `day2//x.csv`)."""
    kind, client = served.kind, served.client
    route = client.get("/openapi.json").json()["paths"]["/control/batch/{model}/jobs"]["get"]
    (after,) = [p for p in route["parameters"] if p["name"] == "after"]
    schema = after["schema"]
    for cursor in INPUTS[kind]:
        assert jsonschema.Draft202012Validator(schema).is_valid(cursor), cursor
        answer = client.get(JOBS, params={"after": cursor})
        assert answer.status_code == 200, answer.text
        assert [job["file"] for job in answer.json()["jobs"]] == [
            f for f in INPUTS[kind] if f > cursor
        ]
    too_long = client.get(JOBS, params={"after": "x" * 4097})
    assert too_long.status_code == 400, too_long.text
    assert too_long.json() == {
        "error": "after has 4097 characters: pass a page's `next`, or a file name "
        "(1-4096 characters) to list the jobs after it"
    }
    assert not jsonschema.Draft202012Validator(schema).is_valid("x" * 4097)


@pytest.mark.parametrize("served", ["directory"], indirect=True)  # S3 keys are UTF-8
def test_a_directory_file_name_that_is_not_utf8_is_left_out_not_a_500(served: Served) -> None:
    """A file copied in by hand with a Latin-1 name: no S3 key and no JSON string can hold
    it, and the whole job list was a plain-text 500."""
    latin = os.fsencode(served.inputs) + b"/\xe9t\xe9.csv"
    with open(latin, "wb") as out:
        out.write(ROWS)
    try:
        jobs, _ = walk(served.client, 2)
        assert [job["file"] for job in jobs] == INPUTS[served.kind]
    finally:
        os.remove(latin)
