"""Batch job names that block each other on a directory store (`a.csv`, then `a.csv/b.csv`; S3
holds both keys, a directory cannot): the caller is told, a 409 for a submit and a 404 for a
status or a comparison, where each was a 503 "the model store failed"; and `x.csv`, only a
folder of another job's input, is no job (it read 200 "pending")."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.control.app import create_app
from functions.runtime.registry import Registry
from functions.runtime.store import LocalStore
from tests import onnx_factory

JOBS = "/control/batch/iris/jobs"
ROWS = b"f1,f2,f3,f4\n1,2,3,4\n"
CLASH = "(a directory store cannot hold both keys; S3 can)"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("AIAAS_CACHE_DIR", str(tmp_path / "cache"))
    registry = Registry(LocalStore(tmp_path / "store"))
    onnx = onnx_factory.linear_classifier(tmp_path / "linear.onnx")
    for version in ("1", "2"):
        registry.publish(onnx_factory.manifest_for(onnx, "iris", version), onnx)
    return TestClient(create_app(registry.store))


def test_a_job_under_another_job_s_file_is_the_caller_s_409_then_404(client: TestClient) -> None:
    assert client.put(f"{JOBS}/a.csv", content=ROWS).status_code == 202
    submitted = client.put(f"{JOBS}/a.csv/b.csv", content=ROWS)
    assert submitted.status_code == 409, submitted.text
    assert submitted.json()["error"] == (
        "cannot use 'batch/iris/input/a.csv/b.csv': 'batch/iris/input/a.csv' is a file where a "
        f"folder should be {CLASH}"
    )
    followed = client.get(f"{JOBS}/a.csv/b.csv")
    assert followed.status_code == 404, followed.text
    body = {"a": "1", "b": "2", "data": "batch/iris/input/a.csv/b.csv"}
    assert client.post("/control/models/iris/compare", json=body).status_code == 404


def test_a_job_named_as_another_job_s_folder(client: TestClient) -> None:
    assert client.put(f"{JOBS}/x.csv/y.csv", content=ROWS).status_code == 202
    followed = client.get(f"{JOBS}/x.csv")
    assert followed.status_code == 404, followed.text  # was 200 'pending': never submitted
    submitted = client.put(f"{JOBS}/x.csv", content=ROWS)
    assert submitted.status_code == 409, submitted.text
    assert "'batch/iris/input/x.csv' is a folder of other keys" in submitted.json()["error"]


def test_an_empty_file_name_for_a_copied_job_is_refused(client: TestClient) -> None:
    """`"file": ""` was replaced by the source's name, silently (absent, it still is)."""
    body = {"source": "uploads/rows.csv", "file": ""}
    answer = client.post(JOBS, json=body)
    assert answer.status_code == 400, answer.text
    assert "''" in answer.json()["error"]


def test_a_file_batch_does_not_read_is_listed_as_refused_not_a_400_of_the_page(
    client: TestClient, tmp_path: Path
) -> None:
    """`notes.txt` dropped into input/ (anyone can, on S3) made every page holding it a 400,
    so no client could list the model's jobs; it is listed as refused, saying why."""
    assert client.put(f"{JOBS}/a.csv", content=ROWS).status_code == 202
    folder = tmp_path / "store" / "batch" / "iris" / "input"
    (folder / "notes.txt").write_bytes(b"hello")
    (folder / "README").write_bytes(b"no extension: no job, left out")
    listed = client.get(JOBS)
    assert listed.status_code == 200, listed.text
    jobs = {job["file"]: job for job in listed.json()["jobs"]}
    assert sorted(jobs) == ["a.csv", "notes.txt"]
    assert jobs["a.csv"]["status"] != "refused"
    notes = jobs["notes.txt"]
    assert notes["status"] == "refused"
    assert notes["error"].startswith(
        "batch/iris/input/notes.txt: unsupported input format '.txt'; name the file with one"
    )
    one = client.get(f"{JOBS}/notes.txt")
    assert (one.status_code, one.json()) == (200, notes)
    missing = client.get(f"{JOBS}/other.txt")  # no such object: the format's 400, as before
    assert missing.status_code == 400
