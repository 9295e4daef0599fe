"""GET /control/batch/<model>/jobs in pages lists the model's input folder from the page's
`after` on, as far as the page: each page listed the whole folder (S3: one request a 1,000
inputs, for every page of 100), so a year of hourly inputs cost every page ~9 requests and
a folder of 100,000 cost 100. Over S3 on moto's server, and the directory store alike."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.s3store import S3Store
from functions.runtime.store import LocalStore, ObjectStore
from tests import onnx_factory

ROW = b"x_0,x_1,x_2,x_3\n1,2,3,4\n"
# By text, as S3 lists keys: `a-c.csv` before `a/b.csv` ('-' < '/'); by path parts, after it.
NESTED = ["a-c.csv", "a/b.csv", "a/c.csv", "b.csv"]


def _with_model(store: ObjectStore, tmp_path: Path) -> TestClient:
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    Registry(store).publish(onnx_factory.manifest_for(onnx, "iris", "1"), onnx)
    return TestClient(create_app(store))


def _files(client: TestClient, limit: int) -> list[list[str]]:
    found, after = [], None
    while True:
        query = {"limit": limit} | ({} if after is None else {"after": after})
        answer = client.get("/control/batch/iris/jobs", params=query)
        assert answer.status_code == 200, answer.text
        found.append([job["file"] for job in answer.json()["jobs"]])
        after = answer.json()["next"]
        if after is None:
            return found


@pytest.fixture
def s3(moto_server: Any) -> S3Store:
    from functions.runtime.s3store import make_s3_client

    bucket = f"aiaas-job-pages-{uuid.uuid4().hex[:8]}"
    make_s3_client().create_bucket(Bucket=bucket)
    return S3Store(bucket, "registry")


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_nested_inputs_page_in_text_order_on_either_store(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = LocalStore(tmp_path / "store") if kind == "directory" else request.getfixturevalue("s3")
    client = _with_model(store, tmp_path)
    for file in reversed(NESTED):
        store.put_bytes(f"batch/iris/input/{file}", ROW)
    store.put_bytes("batch/iris/input/notes", b"no extension: no job")
    assert _files(client, 1) == [[f] for f in NESTED]
    assert _files(client, 3) == [NESTED[:3], NESTED[3:]]
    assert _files(client, 100) == [NESTED]
    # a cursor that has gone since (the file deleted) still starts past where it sorts
    answer = client.get("/control/batch/iris/jobs", params={"after": "a/bz.csv"})
    assert [job["file"] for job in answer.json()["jobs"]] == ["a/c.csv", "b.csv"]


def test_a_page_lists_from_its_cursor_not_the_whole_folder(s3: S3Store, tmp_path: Path) -> None:
    client = _with_model(s3, tmp_path)
    files = [f"{hour:05d}.csv" for hour in range(1100)]  # over one S3 listing page of 1,000
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: s3.put_bytes(f"batch/iris/input/{f}", ROW), files))
    calls: list[str] = []
    count = lambda model, **_: calls.append(model.name)  # noqa: E731
    s3.client.meta.events.register("before-parameter-build.s3", count)
    try:
        first = client.get("/control/batch/iris/jobs", params={"limit": 2}).json()
        listed_first = calls.count("ListObjectsV2")
        last = client.get("/control/batch/iris/jobs", params={"after": "01097.csv"}).json()
    finally:
        s3.client.meta.events.unregister("before-parameter-build.s3", count)
    assert ([j["file"] for j in first["jobs"]], first["next"]) == (files[:2], "00001.csv")
    assert ([j["file"] for j in last["jobs"]], last["next"]) == (files[1098:], None)
    # one listing is the model's versions (a 404 for no model); the other the page's: was 2,
    # the whole folder, for a page of two
    assert listed_first == 2, calls
    assert calls.count("ListObjectsV2") == 4, calls  # the last page: one listing from 01097
